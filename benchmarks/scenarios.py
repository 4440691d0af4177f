"""The benchmark scenarios, written once against the dask.distributed Client API.

trident and dask.distributed share that API, so one function measures both. Each
scenario returns one number; `Scenario.higher_is_better` says which way is good.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def noop(x):
    return x


def inc(x):
    return x + 1


def add(a, b):
    return a + b


def nbytes(array):
    return array.nbytes


def work(seconds):
    """A task that takes `seconds` (sleeping, so two workers on two cores stay fair)."""
    time.sleep(seconds)
    return seconds


class Counter:
    """The actor used by the actor scenarios."""

    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n


@dataclass(frozen=True)
class Scenario:
    name: str
    unit: str
    higher_is_better: bool
    description: str


SCENARIOS = [
    Scenario("map_gather_20k", "tasks/s", True, "20,000 no-op tasks, client.map + client.gather"),
    Scenario(
        "map_wait_20k", "tasks/s", True, "20,000 no-op tasks, client.map, wait(), client.gather"
    ),
    Scenario("round_trip", "us", False, "sequential submit -> result, one no-op task at a time"),
    Scenario("chain_1000", "us/task", False, "a chain of 1,000 tasks, each using the previous"),
    Scenario("tree_4096", "tasks/s", True, "tree reduction of 4,096 leaves (8,191 tasks)"),
    Scenario("actor_call", "us", False, "sequential actor method call -> result"),
    Scenario("actor_pipelined_10k", "calls/s", True, "10,000 actor calls issued, then gathered"),
    Scenario("scatter_200MB", "MB/s", True, "scatter one 200 MB numpy array (hash=False)"),
    Scenario("gather_200MB", "MB/s", True, "gather one 200 MB numpy array back from a worker"),
    Scenario(
        "worker_to_worker_200MB", "MB/s", True, "a task on one worker reads 200 MB held by another"
    ),
    Scenario(
        "short_beside_long",
        "ms",
        False,
        "worst latency of 5 known-fast tasks submitted while a 1.5 s task runs on one worker",
    ),
    Scenario(
        "mixed_durations",
        "s",
        False,
        "4 tasks of 1 s among 400 of 5 ms (one function), client.map + gather; 3 s ideal",
    ),
    Scenario(
        "cluster_ready", "s", False, "LocalCluster with 2 worker processes, started and connected"
    ),
    Scenario("fixture_ready", "ms", False, "in-process test cluster (2 workers) ready"),
    Scenario("rss_after_map_MiB", "MiB", False, "RSS of client + workers after the 20k map"),
]


def map_gather(client: Any, n: int = 20_000) -> float:
    start = time.perf_counter()
    futures = client.map(noop, range(n))
    results = client.gather(futures)
    elapsed = time.perf_counter() - start
    assert len(results) == n
    del futures
    return n / elapsed


def map_wait(client: Any, n: int = 20_000) -> float:
    """As `map_gather`, with the ``wait(futures)`` that dask code often puts before it."""
    wait = importlib.import_module(type(client).__module__.split(".")[0]).wait
    start = time.perf_counter()
    futures = client.map(noop, range(n))
    wait(futures)
    results = client.gather(futures)
    elapsed = time.perf_counter() - start
    assert len(results) == n
    del futures
    return n / elapsed


def round_trip(client: Any, n: int = 200) -> float:
    client.submit(noop, -1, pure=False).result()
    start = time.perf_counter()
    for i in range(n):
        client.submit(noop, i, pure=False).result()
    return (time.perf_counter() - start) / n * 1e6


def chain(client: Any, n: int = 1000) -> float:
    start = time.perf_counter()
    future = client.submit(inc, 0, pure=False)
    for _ in range(n - 1):
        future = client.submit(inc, future, pure=False)
    assert future.result() == n
    return (time.perf_counter() - start) / n * 1e6


def _counter(client: Any) -> Any:
    return client.submit(Counter, actor=True).result()


def actor_call(client: Any, n: int = 300) -> float:
    counter = _counter(client)
    counter.incr().result()
    start = time.perf_counter()
    for _ in range(n):
        counter.incr().result()
    return (time.perf_counter() - start) / n * 1e6


def actor_pipelined(client: Any, n: int = 10_000) -> float:
    counter = _counter(client)
    counter.incr().result()
    start = time.perf_counter()
    calls = [counter.incr() for _ in range(n)]
    values = [call.result() for call in calls]
    elapsed = time.perf_counter() - start
    assert values[-1] == n + 1
    return n / elapsed


def tree(client: Any, leaves: int = 4096) -> float:
    start = time.perf_counter()
    level = client.map(inc, range(leaves))
    tasks = len(level)
    while len(level) > 1:
        level = [client.submit(add, a, b) for a, b in zip(level[::2], level[1::2], strict=True)]
        tasks += len(level)
    assert level[0].result() == sum(range(1, leaves + 1))
    return tasks / (time.perf_counter() - start)


def short_beside_long(client: Any, shorts: int = 5, long: float = 1.5) -> float:
    """Worst ms from submit to result of `shorts` sequential short tasks submitted while
    a `long` task runs (the scheduler knows the short function is fast). A scheduler that
    queues one behind the long task shows the long task's remaining time here (the
    worst, not the median: the shorts after that one find both workers free)."""
    client.gather(client.map(inc, range(10), pure=False))
    running = client.submit(work, long, pure=False)
    time.sleep(0.1)  # the long task has started on one of the workers
    latencies = []
    for i in range(shorts):
        start = time.perf_counter()
        assert client.submit(inc, i, pure=False).result() == i + 1
        latencies.append(time.perf_counter() - start)
    running.result()
    return max(latencies) * 1e3


def mixed_durations(client: Any, long: int = 4, short: int = 400) -> float:
    """Seconds to run `long` 1 s tasks spread among `short` 5 ms ones of one function."""
    durations = [0.005] * short
    for i in range(long):
        durations.insert(i * (short // long), 1.0)
    start = time.perf_counter()
    results = client.gather(client.map(work, durations, pure=False))
    elapsed = time.perf_counter() - start
    assert results == durations
    return elapsed


_ARRAY: dict[int, np.ndarray] = {}


def array(megabytes: int = 200) -> np.ndarray:
    if megabytes not in _ARRAY:
        _ARRAY[megabytes] = np.random.default_rng(0).random(megabytes * 2**20 // 8)
    return _ARRAY[megabytes]


def scatter(client: Any, megabytes: int = 200) -> float:
    data = array(megabytes)
    start = time.perf_counter()
    future = client.scatter(data, hash=False)
    elapsed = time.perf_counter() - start
    client.cancel([future])
    return megabytes / elapsed


def gather(client: Any, megabytes: int = 200) -> float:
    data = array(megabytes)
    future = client.scatter(data, hash=False)
    start = time.perf_counter()
    result = future.result()
    elapsed = time.perf_counter() - start
    assert result.shape == data.shape
    client.cancel([future])
    return megabytes / elapsed


def worker_to_worker(client: Any, megabytes: int = 200) -> float:
    """MB/s of a dependency moving between workers (the task itself is trivial)."""
    first, second = sorted(client.scheduler_info()["workers"])[:2]
    # Warm up: the function on the second worker and its connection to the first.
    small = client.scatter(np.zeros(8), workers=[first], hash=False)
    client.submit(nbytes, small, workers=[second], pure=False).result()
    data = client.scatter(array(megabytes), workers=[first], hash=False)
    start = time.perf_counter()
    size = client.submit(
        nbytes, data, workers=[second], allow_other_workers=False, pure=False
    ).result()
    elapsed = time.perf_counter() - start
    assert size == megabytes * 2**20
    client.cancel([data])
    return megabytes / elapsed


CLIENT_SCENARIOS: dict[str, Callable[[Any], float]] = {
    "map_gather_20k": map_gather,
    "map_wait_20k": map_wait,
    "round_trip": round_trip,
    "chain_1000": chain,
    "tree_4096": tree,
    "short_beside_long": short_beside_long,
    "mixed_durations": mixed_durations,
    "actor_call": actor_call,
    "actor_pipelined_10k": actor_pipelined,
    "scatter_200MB": scatter,
    "gather_200MB": gather,
    "worker_to_worker_200MB": worker_to_worker,
}
