"""What the client, the scheduler and the workers stop holding once a result is let go.

A process that runs a cluster raises the cyclic collector's thresholds (`trident._gc`),
so anything that is freed only by that collector lingers, and with it results on the
workers. These tests disable the collector to show that plain reference counting is
enough.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import numpy as np
import pytest
import trio

from trident.protocol.serialize import is_kept_function

from ..polling import wait_until


def inc(x):
    return x + 1


class Weighty:
    """A callable that carries data: its pickle is far larger than a function's."""

    def __init__(self) -> None:
        self.table = np.arange(100_000, dtype=np.float64)

    def __call__(self, x):
        return x + 1


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def test_a_future_with_a_done_callback_is_released_when_dropped(
    trident_client, trident_cluster, no_cycle_collector
):
    called = trio.Event()
    future = trident_client.submit(inc, 1)
    future.add_done_callback(lambda f: called.set())
    await called.wait()
    key = future.key
    del future
    await wait_until(lambda: key not in trident_client._core.futures)
    await wait_until(lambda: key not in trident_cluster.scheduler.state.tasks)


async def test_large_callables_are_forgotten_once_their_tasks_are_released(
    trident_client, trident_cluster, no_cycle_collector
):
    for i in range(3):
        future = trident_client.submit(Weighty(), i, pure=False)
        assert await future == i + 1
        del future
    small = trident_client.submit(inc, 1)
    assert await small == 2
    state = trident_cluster.scheduler.state

    def large_functions_left():
        held = [p for p in state.functions.values() if not is_kept_function(p)]
        for handle in trident_cluster.workers.values():
            functions = handle.worker._functions._functions
            held += [f for f in functions.values() if isinstance(f, Weighty)]
        return held

    await wait_until(lambda: not large_functions_left())
    kept = trident_client._core._reconnection._function_payloads
    assert all(is_kept_function(p) for p in kept.values())
    assert any(is_kept_function(p) for p in state.functions.values())  # inc's stays


def _receive_buffer_of(array: np.ndarray) -> object:
    """The object at the bottom of `array`'s chain of bases (views, memoryviews)."""
    base: object = array
    while True:
        below = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
        if below is None:
            return base
        base = below


def _owns_its_data(array: np.ndarray) -> bool:
    return bool(array.flags.owndata)


async def test_a_large_result_reaches_the_client_without_a_copy(trident_client):
    future = trident_client.submit(np.ones, 1_000_000)  # 8 MB: a frame of its own
    array = await trident_client.gather(future)
    assert array.sum() == 1_000_000
    assert not array.flags.owndata
    assert array.flags.writeable
    # A view of the buffer the socket filled, not of a copy made after receiving.
    assert type(_receive_buffer_of(array)).__name__ in ("mmap", "bytearray")


async def test_a_dependency_fetched_from_a_peer_is_not_copied(trident_client):
    first, second = sorted(trident_client.nthreads())
    array = trident_client.submit(np.ones, 1_000_000, workers=[first])
    owns = trident_client.submit(_owns_its_data, array, workers=[second])
    assert await owns is False


async def test_a_large_callable_is_freed_on_its_worker_once_released(
    trident_client, trident_cluster, no_cycle_collector
):
    future = trident_client.submit(Weighty(), 1, pure=False)
    assert await future == 2
    loaded = [
        f
        for handle in trident_cluster.workers.values()
        for f in handle.worker._functions._functions.values()
        if isinstance(f, Weighty)
    ]
    assert len(loaded) == 1
    held = weakref.ref(loaded.pop())
    del future
    # Nothing on the worker (its function cache, the task thread that ran it, its
    # connections) keeps the callable and the data it carries.
    await wait_until(lambda: held() is None)
