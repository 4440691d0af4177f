"""Locks, semaphores and multi-locks with an asynchronous client and from tasks,
including leases given back after failures, cancellations and disconnects."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from trident import Client, Event, Lock, MultiLock, SchedulerError, Semaphore, Variable

from ..polling import DEADLINE

concurrency_lock = threading.Lock()
active = {"now": 0, "peak": 0}


@pytest.fixture
def trident_cluster_options():
    return {"n_workers": 2, "threads_per_worker": 2}


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


def increment_under_lock(name: str) -> None:
    """Read-modify-write a Variable; only correct if the lock excludes the others."""
    with Lock(name):
        counter = Variable(f"{name}-counter")
        value = counter.get(timeout=5)
        time.sleep(0.005)
        counter.set(value + 1)


async def async_increment_under_lock(name: str) -> None:
    async with Lock(name):
        counter = Variable(f"{name}-counter")
        value = await counter.get(timeout=5)
        await trio.sleep(0.005)
        await counter.set(value + 1)


def limited(name: str, limit: int) -> int:
    with Semaphore(limit, name):
        with concurrency_lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        time.sleep(0.05)
        with concurrency_lock:
            active["now"] -= 1
    return 1


def hold_and_fail(name: str) -> None:
    Lock(name).acquire()
    raise RuntimeError("failed while holding the lock")


async def hold_forever(name: str, started: str) -> None:
    await Lock(name).acquire()
    await Event(started).set()
    await trio.sleep_forever()


async def test_a_lock_excludes_tasks_on_every_worker(trident_client):
    client = trident_client
    await Variable("shared-counter", client=client).set(0)
    futures = client.map(increment_under_lock, ["shared"] * 8, pure=False)
    futures += client.map(async_increment_under_lock, ["shared"] * 8, pure=False)
    await client.gather(futures)
    assert await Variable("shared-counter", client=client).get() == 16


async def test_acquire_with_timeouts_and_without_blocking(trident_client):
    lock = Lock("timeouts", client=trident_client)
    other = Lock("timeouts", client=trident_client)
    assert await lock.acquire()
    assert await lock.locked()
    start = trio.current_time()
    assert await other.acquire(timeout=0.2) is False
    assert trio.current_time() - start >= 0.2
    assert await other.acquire(blocking=False) is False
    with pytest.raises(ValueError, match="non-blocking"):
        other.acquire(blocking=False, timeout=1)
    await lock.release()
    assert await other.acquire(timeout="1s")
    await other.release()
    assert not await lock.locked()
    with pytest.raises(RuntimeError, match="not acquired"):
        lock.release()


async def test_a_cancelled_acquire_never_leaves_the_lock_held(trident_client):
    client = trident_client
    holder = Lock("cancelled", client=client)
    for _ in range(20):
        await holder.acquire()
        async with trio.open_nursery() as nursery:

            async def wait_for_lock() -> None:
                await Lock("cancelled", client=client).acquire()

            nursery.start_soon(wait_for_lock)
            await trio.sleep(0.01)
            await holder.release()  # the grant races the cancellation below
            nursery.cancel_scope.cancel()
        with trio.fail_after(DEADLINE):
            while await holder.locked():  # a grant in flight is given back
                await trio.sleep(0.01)
    assert await holder.acquire(timeout=1)
    await holder.release()


async def test_a_semaphore_limits_concurrency(trident_client):
    active["peak"] = 0
    futures = trident_client.map(limited, ["sem"] * 8, [2] * 8, pure=False)
    assert sum(await trident_client.gather(futures)) == 8
    assert active["peak"] == 2
    semaphore = await Semaphore(2, "sem", client=trident_client)
    assert await semaphore.get_value() == 0
    async with semaphore:
        assert await semaphore.get_value() == 1
    await Semaphore(3, "sem-mismatch", client=trident_client).acquire()
    with pytest.raises(SchedulerError, match="max_leases=3"):
        await Semaphore(2, "sem-mismatch", client=trident_client).acquire()


async def test_a_multi_lock_takes_all_its_locks(trident_client):
    client = trident_client
    both = MultiLock(["ma", "mb"], client=client)
    assert await both.acquire()
    assert both.locked()
    assert await Lock("mb", client=client).acquire(timeout=0.1) is False
    await both.release()
    assert not both.locked()
    single = Lock("mb", client=client)
    await single.acquire()
    assert await both.acquire(timeout=0.1) is False
    assert await both.acquire(timeout=1, num_locks=1)  # "ma" alone is enough
    await both.release()
    await single.release()
    with pytest.raises(ValueError, match="not acquired"):
        await both.release()


async def test_a_failed_task_gives_its_lock_back(trident_client):
    future = trident_client.submit(hold_and_fail, "failing", pure=False)
    with pytest.raises(RuntimeError, match="holding the lock"):
        await future
    assert await Lock("failing", client=trident_client).acquire(timeout=5)


async def test_a_cancelled_task_gives_its_lock_back(trident_client):
    client = trident_client
    future = client.submit(hold_forever, "cancelled-task", "held", pure=False)
    assert await Event("held", client=client).wait(timeout=5)
    lock = Lock("cancelled-task", client=client)
    assert await lock.acquire(timeout=0.1) is False
    await future.cancel()
    assert await lock.acquire(timeout=5)


async def test_a_disconnecting_client_gives_its_lock_back(trident_cluster, trident_client):
    async with Client(trident_cluster, asynchronous=True, set_as_default=False) as other:
        assert await Lock("left", client=other).acquire()
    assert await Lock("left", client=trident_client).acquire(timeout=5)


async def test_a_stopped_worker_gives_back_the_locks_of_its_tasks(trident_cluster, trident_client):
    client = trident_client
    future = client.submit(hold_forever, "lost", "lost-held", pure=False)
    assert await Event("lost-held", client=client).wait(timeout=5)
    (running_it,) = [
        h for h in trident_cluster.workers.values() if future.key in h.worker.state.tasks
    ]
    lock = Lock("lost", client=client)
    assert await lock.acquire(timeout=0.1) is False
    running_it.scope.cancel()  # the in-process worker stops without a word
    assert await lock.acquire(timeout=5)
    await future.cancel()
