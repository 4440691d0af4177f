"""Does the scheduler's memory stay flat while a client submits and drops tiny tasks?

Two ways to drive it, both printing the scheduler's memory every `--report-every`
tasks (a flat curve is the goal: per-task bookkeeping is released with the keys):

* ``--mode state`` (default): `SchedulerState` alone, with 8 synthetic workers that
  finish every task they are given at once. Batches of 1,000 tasks are submitted; half
  of each batch is released as soon as it is submitted (dropped before it runs), the
  other half once finished (dropped after). Memory is what `tracemalloc` sees
  allocated, plus the process's resident set.
* ``--keys own``: keys made by the user without a function name (``result12345``),
  so that every task has a prefix of its own.
* ``--mode cluster``: a real in-process cluster (scheduler, 2 workers, a client in one
  trio loop); the client submits tiny tasks and drops each future at once, keeping at
  most 1,000 in flight. Memory is the process's resident set (client, scheduler and
  workers together) plus the scheduler's record counts.

Usage: ``python -m benchmarks.scheduler_memory [--mode state|cluster] [--tasks 1000000]``
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from typing import Any

import psutil

from trident.protocol import messages as m
from trident.scheduler.state import SchedulerState

from .simulate import ARGS, run_all, spec

BATCH = 1000
KEY_FORMATS = {"inc": "inc-{}", "own": "result{}"}
WORKERS = 8


def bookkeeping(state: SchedulerState) -> dict[str, int]:
    """Sizes of the scheduler's per-key and per-prefix tables."""
    return {
        "tasks": len(state.tasks),
        "queue": len(state.books.queue),
        "functions": len(state.functions),
        "prefixes": len(state.durations._by_prefix),
        "activity": len(state.activity.stream),
    }


def drive_state(total: int, every: int, key_format: str) -> list[dict[str, Any]]:
    process = psutil.Process()
    gc.collect()
    tracemalloc.start()
    state = SchedulerState("memory")
    for i in range(WORKERS):
        state.add_worker(m.WorkerInfo(f"tcp://w{i}", f"w{i}", 2, 0, {}))
    state.add_client("c", "c")
    state.flush()
    rows = []
    submitted = 0
    started = time.perf_counter()
    while submitted < total:
        keys = [key_format.format(submitted + i) for i in range(BATCH)]
        state.handle_client_message("c", m.UpdateGraph({"f": ARGS}, [spec(k, []) for k in keys]))
        dropped_early = keys[: BATCH // 2]
        state.handle_client_message("c", m.ReleaseKeys(dropped_early))
        run_all(state, state.flush())
        state.handle_client_message("c", m.ReleaseKeys(keys[BATCH // 2 :]))
        state.flush()
        submitted += BATCH
        if submitted % every == 0:
            gc.collect()
            rows.append(
                {
                    "tasks_submitted": submitted,
                    "traced_bytes": tracemalloc.get_traced_memory()[0],
                    "rss_bytes": process.memory_info().rss,
                    "seconds": time.perf_counter() - started,
                    **bookkeeping(state),
                }
            )
            print_row(rows[-1])
    tracemalloc.stop()
    return rows


def inc(x: int) -> int:
    return x + 1


def drive_cluster(total: int, every: int, key_format: str) -> list[dict[str, Any]]:
    import trio

    from trident import Client
    from trident.testing import in_process_cluster

    rows: list[dict[str, Any]] = []
    process = psutil.Process()

    async def main() -> None:
        async with (
            in_process_cluster(n_workers=2) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            state = cluster.scheduler.state
            started = time.perf_counter()
            in_flight: list[Any] = []
            for i in range(1, total + 1):
                key = None if key_format == KEY_FORMATS["inc"] else key_format.format(i)
                in_flight.append(client.submit(inc, i, key=key, pure=False))
                if len(in_flight) >= BATCH:
                    await in_flight[-1]
                    in_flight.clear()  # dropped: released on the scheduler
                if i % every == 0:
                    await trio.sleep(0.05)  # let releases reach the scheduler
                    gc.collect()
                    rows.append(
                        {
                            "tasks_submitted": i,
                            "rss_bytes": process.memory_info().rss,
                            "seconds": time.perf_counter() - started,
                            **bookkeeping(state),
                        }
                    )
                    print_row(rows[-1])

    trio.run(main)
    return rows


def print_row(row: dict[str, Any]) -> None:
    traced = row.get("traced_bytes")
    traced_text = f"{traced / 2**20:>9.1f}" if traced is not None else f"{'-':>9}"
    print(
        f"{row['tasks_submitted']:>10,} {traced_text} {row['rss_bytes'] / 2**20:>8.1f} "
        f"{row['tasks']:>7} {row['queue']:>6} {row['prefixes']:>8} {row['seconds']:>7.1f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scheduler_memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=("state", "cluster"), default="state")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--report-every", type=int, default=100_000)
    parser.add_argument("--keys", choices=("inc", "own"), default="inc")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(
        f"{'submitted':>10} {'traced MiB':>9} {'RSS MiB':>8} {'tasks':>7} {'queue':>6} "
        f"{'prefixes':>8} {'seconds':>7}"
    )
    drive = drive_state if args.mode == "state" else drive_cluster
    rows = drive(args.tasks, args.report_every, KEY_FORMATS[args.keys])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "keys": args.keys, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
