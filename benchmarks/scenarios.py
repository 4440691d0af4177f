"""The benchmark scenarios. Each takes a connected client (trident's or dask's: their
APIs are the same) and returns one measurement; higher or lower is better as declared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def noop(x):
    return x


def inc(x):
    return x + 1


@dataclass(frozen=True)
class Scenario:
    name: str
    unit: str
    higher_is_better: bool
    run: Callable[[Any], float]
    description: str


def map_gather(client: Any, n: int = 20_000) -> float:
    """Tasks per second for map + gather of `n` no-op tasks."""
    start = time.perf_counter()
    futures = client.map(noop, range(n))
    results = client.gather(futures)
    elapsed = time.perf_counter() - start
    assert len(results) == n
    del futures
    return n / elapsed


def round_trip(client: Any, n: int = 200) -> float:
    """Microseconds per sequential submit -> result."""
    client.submit(noop, -1, pure=False).result()
    start = time.perf_counter()
    for i in range(n):
        client.submit(noop, i, pure=False).result()
    return (time.perf_counter() - start) / n * 1e6


def chain(client: Any, n: int = 1000) -> float:
    """Microseconds per task of a dependency chain of `n` tasks."""
    start = time.perf_counter()
    future = client.submit(inc, 0, pure=False)
    for _ in range(n - 1):
        future = client.submit(inc, future, pure=False)
    assert future.result() == n
    return (time.perf_counter() - start) / n * 1e6


_ARRAY: dict[int, np.ndarray] = {}


def _array(megabytes: int) -> np.ndarray:
    if megabytes not in _ARRAY:
        _ARRAY[megabytes] = np.random.default_rng(0).random(megabytes * 2**20 // 8)
    return _ARRAY[megabytes]


def scatter(client: Any, megabytes: int = 200) -> float:
    """MB/s moving a numpy array from the client to a worker."""
    array = _array(megabytes)
    start = time.perf_counter()
    future = client.scatter(array, hash=False)
    elapsed = time.perf_counter() - start
    client.cancel([future])
    return megabytes / elapsed


def gather(client: Any, megabytes: int = 200) -> float:
    """MB/s moving a numpy array from a worker back to the client."""
    array = _array(megabytes)
    future = client.scatter(array, hash=False)
    start = time.perf_counter()
    result = future.result()
    elapsed = time.perf_counter() - start
    assert result.shape == array.shape
    client.cancel([future])
    return megabytes / elapsed


SCENARIOS = [
    Scenario(
        "map_gather_20k",
        "tasks/s",
        True,
        map_gather,
        "20,000 no-op tasks, client.map + client.gather",
    ),
    Scenario(
        "round_trip",
        "us",
        False,
        round_trip,
        "sequential submit -> result, one no-op task at a time",
    ),
    Scenario(
        "chain_1000",
        "us/task",
        False,
        chain,
        "a chain of 1,000 tasks, each depending on the previous",
    ),
    Scenario("scatter_200MB", "MB/s", True, scatter, "scatter one 200 MB numpy array (hash=False)"),
    Scenario(
        "gather_200MB", "MB/s", True, gather, "gather one 200 MB numpy array back from a worker"
    ),
]
