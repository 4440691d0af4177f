"""Run trident, dask.distributed and Ray side by side; print medians and ratios.

All runtimes' clusters (2 worker processes x 1 thread each unless told otherwise) run at
the same time on the same machine, and the repeats of every scenario alternate between
them, so machine noise hits all alike. Ray is included when it is installed. Usage::

    python -m benchmarks [--repeats 3] [--only round_trip,actor_call] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from typing import Any

from .floor import floor_mb_per_s
from .runtimes import CLI_STARTERS, STARTERS, available
from .scenarios import SCENARIOS, Scenario


def ratio(scenario: Scenario, ours: float, theirs: float) -> float:
    """How many times better trident is (above 1 means trident wins)."""
    return ours / theirs if scenario.higher_is_better else theirs / ours


def machine() -> dict[str, Any]:
    import psutil

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def table(
    chosen: list[Scenario], medians: dict[str, dict[str, float]], runtimes: list[str]
) -> list[str]:
    peers = [r for r in runtimes if r != "trident"]
    header = f"{'scenario':<24} {'unit':<8}" + "".join(f"{r:>13}" for r in runtimes)
    if "trident" in runtimes:
        header += "".join(f"{'vs ' + p:>11}" for p in peers)
    lines = [header]
    for scenario in chosen:
        row = medians[scenario.name]
        line = f"{scenario.name:<24} {scenario.unit:<8}"
        line += "".join(f"{row[r]:>13,.1f}" if r in row else f"{'-':>13}" for r in runtimes)
        if "trident" in row:
            for peer in peers:
                if peer in row:
                    line += f"{ratio(scenario, row['trident'], row[peer]):>10.1f}x"
                else:
                    line += f"{'-':>11}"
        lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--runtimes", default="trident,dask,ray")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument(
        "--deploy",
        choices=("local", "cli"),
        default="local",
        help="local: in-process LocalClusters; cli: `trident up` and `dask scheduler` + "
        "`dask worker`, each scheduler in a process of its own",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    starters = CLI_STARTERS if args.deploy == "cli" else STARTERS
    runtimes = [r for r in args.runtimes.split(",") if r in starters and available(r)]

    started: dict[str, Any] = {}
    startup: dict[str, float] = {}
    for name in runtimes:
        start = time.perf_counter()
        started[name] = starters[name](args.workers, args.threads)
        startup[name] = time.perf_counter() - start

    results: dict[str, dict[str, list[float]]] = {s.name: {} for s in chosen}
    try:
        for scenario in chosen:
            for repeat in range(args.repeats):
                for name in runtimes:
                    run = started[name].scenarios.get(scenario.name)
                    if run is None:
                        continue
                    value = run()
                    results[scenario.name].setdefault(name, []).append(value)
                    print(
                        f"  {scenario.name:<24} {name:<8} #{repeat + 1}: "
                        f"{value:,.1f} {scenario.unit}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for runtime in started.values():
            runtime.close()

    medians = {s: {r: statistics.median(v) for r, v in by.items()} for s, by in results.items()}
    print(
        f"\nmedians of {args.repeats} repeats, {args.workers} workers x {args.threads} "
        f"thread(s), deployed {args.deploy}"
    )
    for line in table(chosen, medians, runtimes):
        print(line)
    print("cluster start (s): " + ", ".join(f"{r} {t:.2f}" for r, t in startup.items()))
    floor = None
    if any(s.unit == "MB/s" for s in chosen):
        floor = floor_mb_per_s()
        print(
            "floor for the MB/s rows: raw loopback TCP between two processes, "
            + ", ".join(f"into a {kind} {rate:,.0f} MB/s" for kind, rate in floor.items())
        )
    print("(vs X: how many times better trident is than X)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": machine(),
                    "repeats": args.repeats,
                    "workers": args.workers,
                    "threads": args.threads,
                    "deploy": args.deploy,
                    "startup_seconds": startup,
                    "loopback_floor_mb_per_s": floor,
                    "results": results,
                    "medians": medians,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
