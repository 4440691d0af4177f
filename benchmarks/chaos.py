"""Chaos: compute a 10,000-task graph while worker processes are killed with SIGKILL.

The graph (10,432 tasks by default) has every shape of dependency that loses data when
a worker dies:

* ``load``: 2,048 root tasks, each a list of 8 integers;
* ``transform`` of each load and a binary tree reduction of the transforms (2,047
  ``add`` tasks);
* a shuffle-like all-to-all stage: the loads are gathered into 64 partitions, each
  partition is split into 64 buckets (4,096 ``split`` tasks), every output bucket
  combines its piece of every partition (64 ``combine`` tasks of 64 inputs each) and
  is reduced;
* one ``finish`` task of the tree's total and every reduced bucket.

Only the final future is kept, as a collection would. While it computes, a random
worker process is killed with SIGKILL every `--interval` seconds; nannies restart the
killed workers (trident's LocalCluster and dask's alike). The run checks that the
result equals the one computed locally and came within `--timeout` seconds, and
reports how many tasks were recomputed (runs that completed beyond one per task:
results lost with their worker and computed again). The exit status is 0 when
trident's result is right; dask's outcome is reported, whatever it is.

Runs trident, then dask.distributed (when installed) with the same graph, workers and
kill schedule. Usage::

    python -m benchmarks.chaos [--workers 4] [--interval 3] [--runtimes trident,dask]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil

#: Each task sleeps this long, so that the run lasts long enough to see many kills.
TASK_SECONDS = 0.004


# --- the graph ---------------------------------------------------------------------


def load(i: int) -> list[int]:
    time.sleep(TASK_SECONDS)
    return [(i * 31 + j * 7) % 1009 for j in range(8)]


def transform(values: list[int]) -> list[int]:
    time.sleep(TASK_SECONDS)
    return [v * v % 10007 for v in values]


def add(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def concat(*parts: list[int]) -> list[int]:
    return [v for part in parts for v in part]


def split(values: list[int], bucket: int, buckets: int) -> list[int]:
    time.sleep(TASK_SECONDS)
    return [v for v in values if v % buckets == bucket]


def combine(*pieces: list[int]) -> list[int]:
    return sorted(v for piece in pieces for v in piece)


def reduce_bucket(values: list[int]) -> int:
    return sum(values) * (len(values) + 1)


def finish(tree_total: list[int], *reduced: int) -> int:
    return sum(tree_total) + sum(i * r for i, r in enumerate(reduced))


class Graph:
    """The tasks, as ``key -> (function, arguments)`` where arguments name keys."""

    def __init__(self, leaves: int = 2048, partitions: int = 64):
        self.tasks: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        self.final = ""
        level = []
        for i in range(leaves):
            self._add(f"load-{i}", load, i)
            self._add(f"transform-{i}", transform, Ref(f"load-{i}"))
            level.append(f"transform-{i}")
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for i in range(0, len(level) - 1, 2):
                key = f"add-{depth}-{i // 2}"
                self._add(key, add, Ref(level[i]), Ref(level[i + 1]))
                nxt.append(key)
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        tree_total = level[0]
        per_partition = leaves // partitions
        for p in range(partitions):
            loads = [Ref(f"load-{i}") for i in range(p * per_partition, (p + 1) * per_partition)]
            self._add(f"concat-{p}", concat, *loads)
            for b in range(partitions):
                self._add(f"split-{p}-{b}", split, Ref(f"concat-{p}"), b, partitions)
        reduced = []
        for b in range(partitions):
            pieces = [Ref(f"split-{p}-{b}") for p in range(partitions)]
            self._add(f"combine-{b}", combine, *pieces)
            self._add(f"reduce-{b}", reduce_bucket, Ref(f"combine-{b}"))
            reduced.append(Ref(f"reduce-{b}"))
        self.final = "finish-0"
        self._add(self.final, finish, Ref(tree_total), *reduced)

    def _add(self, key: str, function: Callable[..., Any], *args: Any) -> None:
        self.tasks[key] = (function, args)

    def __len__(self) -> int:
        return len(self.tasks)

    def expected(self) -> int:
        """The final value, computed here (without the tasks' sleeps)."""
        global TASK_SECONDS
        pause, TASK_SECONDS = TASK_SECONDS, 0.0
        try:
            values: dict[str, Any] = {}
            for key, (function, args) in self.tasks.items():
                values[key] = function(*[values[a.key] if isinstance(a, Ref) else a for a in args])
        finally:
            TASK_SECONDS = pause
        return int(values[self.final])

    def submit(self, client: Any) -> Any:
        """Submit every task (dependencies as futures); return the final future only."""
        futures: dict[str, Any] = {}
        for key, (function, args) in self.tasks.items():
            resolved = [futures[a.key] if isinstance(a, Ref) else a for a in args]
            futures[key] = client.submit(function, *resolved, key=key, pure=False)
        return futures[self.final]


class Ref:
    """An argument that is the result of another task."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key


# --- killing workers -----------------------------------------------------------------


class Killer:
    """Kills a random worker process (a child of this process matching `is_worker`)
    with SIGKILL every `interval` seconds, in a thread, until stopped."""

    def __init__(self, is_worker: Callable[[psutil.Process], bool], interval: float, seed: int):
        self.is_worker = is_worker
        self.interval = interval
        self.random = random.Random(seed)
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def workers(self) -> list[psutil.Process]:
        found = []
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.status() != psutil.STATUS_ZOMBIE and self.is_worker(child):
                    found.append(child)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            workers = self.workers()
            if workers:
                victim = self.random.choice(workers)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim.pid, signal.SIGKILL)
                    self.kills += 1

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- runtimes --------------------------------------------------------------------------


def _cmdline(process: psutil.Process) -> str:
    return " ".join(process.cmdline())


@contextlib.contextmanager
def trident_cluster(workers: int) -> Iterator[tuple[Any, Callable[[], int], Callable]]:
    from trident import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            allowed_failures=10,
            dashboard_address=None,
            memory_limit=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        activity = cluster.scheduler.state.activity

        def completed_runs() -> int:
            return activity.finished_total

        yield client, completed_runs, lambda p: "trident.deploy.worker_process" in _cmdline(p)


class RunCounter:
    """A dask scheduler plugin counting task runs that completed (processing -> memory)."""

    name = "chaos-run-counter"

    def __init__(self) -> None:
        self.runs = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "processing" and finish == "memory":
            self.runs += 1


@contextlib.contextmanager
def dask_cluster(workers: int) -> Iterator[tuple[Any, Callable[[], int], Callable]]:
    import dask
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Counter(RunCounter, SchedulerPlugin):
        pass

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 10}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        counter = Counter()
        cluster.scheduler.add_plugin(counter)

        def completed_runs() -> int:
            return counter.runs

        yield client, completed_runs, lambda p: "spawn_main" in _cmdline(p)


RUNTIMES = {"trident": trident_cluster, "dask": dask_cluster}


def run(
    runtime: str, graph: Graph, *, workers: int, interval: float, timeout: float, seed: int
) -> dict[str, Any]:
    """One chaos run: what happened. `finished` is False when the result did not come
    within `timeout` seconds (or the future failed); `correct` when it came and equals
    the expected value."""
    expected = graph.expected()
    value: Any = None
    error = ""
    with RUNTIMES[runtime](workers) as (client, completed_runs, is_worker):
        started = time.perf_counter()
        before = completed_runs()
        with Killer(is_worker, interval, seed) as killer:
            final = graph.submit(client)
            try:
                value = final.result(timeout=timeout)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        runs = completed_runs() - before
    return {
        "runtime": runtime,
        "tasks": len(graph),
        "seconds": round(elapsed, 2),
        "kills": killer.kills,
        "completed_runs": runs,
        "recomputed": runs - len(graph),
        "finished": not error,
        "correct": not error and value == expected,
        "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--leaves", type=int, default=2048)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds each runtime may take"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runtimes", default="trident,dask")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    graph = Graph(args.leaves, args.partitions)
    results = []
    for runtime in args.runtimes.split(","):
        if runtime == "dask":
            try:
                import distributed  # noqa: F401
            except ImportError:
                print("dask.distributed is not installed: skipped", file=sys.stderr)
                continue
        result = run(
            runtime,
            graph,
            workers=args.workers,
            interval=args.interval,
            timeout=args.timeout,
            seed=args.seed,
        )
        results.append(result)
        if result["finished"]:
            outcome = "result correct" if result["correct"] else "RESULT WRONG"
        else:
            outcome = f"NO RESULT ({result['error']})"
        print(
            f"{runtime:<8} {result['tasks']:,} tasks in {result['seconds']:.1f} s, "
            f"{result['kills']} workers killed, {result['recomputed']} tasks recomputed, "
            f"{outcome}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    # The run proves trident; dask's outcome is reported for comparison.
    return 0 if all(r["correct"] for r in results if r["runtime"] == "trident") else 1


if __name__ == "__main__":
    raise SystemExit(main())
