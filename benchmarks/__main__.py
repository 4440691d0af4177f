"""Run trident and dask.distributed side by side and print medians and ratios.

Both clusters (2 worker processes x 1 thread each unless told otherwise) run at the same
time on the same machine, and the repeats of every scenario alternate between them, so
machine noise hits both alike. Usage::

    python -m benchmarks [--repeats 3] [--only map_gather_20k,round_trip] [--json out.json]
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

from .scenarios import SCENARIOS, Scenario


def start_trident(workers: int, threads: int) -> tuple[Any, Any]:
    import trident

    cluster = trident.LocalCluster(n_workers=workers, threads_per_worker=threads)
    return cluster, trident.Client(cluster, set_as_default=False)


def start_dask(workers: int, threads: int) -> tuple[Any, Any]:
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None
    )
    return cluster, distributed.Client(cluster, set_as_default=False)


RUNTIMES = {"trident": start_trident, "dask": start_dask}


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
    parser.add_argument("--runtimes", default="trident,dask")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    runtimes = [r for r in args.runtimes.split(",") if r]

    clients = {}
    startup = {}
    for name in runtimes:
        start = time.perf_counter()
        clients[name] = RUNTIMES[name](args.workers, args.threads)
        startup[name] = time.perf_counter() - start

    results: dict[str, dict[str, list[float]]] = {s.name: {r: [] for r in runtimes} for s in chosen}
    try:
        for scenario in chosen:
            for repeat in range(args.repeats):
                for name in runtimes:
                    value = scenario.run(clients[name][1])
                    results[scenario.name][name].append(value)
                    print(
                        f"  {scenario.name:<16} {name:<8} #{repeat + 1}: "
                        f"{value:,.1f} {scenario.unit}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for cluster, client in clients.values():
            client.close()
            cluster.close()

    medians = {s: {r: statistics.median(v) for r, v in by.items()} for s, by in results.items()}
    header = f"{'scenario':<16} {'unit':<8}" + "".join(f"{r:>14}" for r in runtimes)
    if "dask" in runtimes and "trident" in runtimes:
        header += f"{'trident/dask':>14}"
    print(f"\nmedians of {args.repeats} repeats, {args.workers} workers x {args.threads} thread(s)")
    print(header)
    for scenario in chosen:
        row = medians[scenario.name]
        line = f"{scenario.name:<16} {scenario.unit:<8}" + "".join(
            f"{row[r]:>14,.1f}" for r in runtimes
        )
        if "dask" in row and "trident" in row:
            line += f"{ratio(scenario, row['trident'], row['dask']):>13.1f}x"
        print(line)
    print("cluster start (s): " + ", ".join(f"{r} {t:.2f}" for r, t in startup.items()))
    print("(ratio > 1: trident is better by that factor)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": machine(),
                    "repeats": args.repeats,
                    "workers": args.workers,
                    "threads": args.threads,
                    "startup_seconds": startup,
                    "results": results,
                    "medians": medians,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
