"""Tasks that wait for tasks: recursive fan-outs on one thread per worker, explicit
`secede` / `rejoin`, `Reschedule`, and seceded tasks under deadlines and cancellation."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from trident import (
    CancelledError,
    Client,
    Reschedule,
    get_client,
    get_worker,
    rejoin,
    secede,
    wait,
    worker_client,
)
from trident.testing import in_process_cluster
from trident.worker.context import current_job


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(60):
        yield


def fib(n):
    if n < 2:
        return n
    client = get_client()
    a = client.submit(fib, n - 1)
    b = client.submit(fib, n - 2)
    return a.result() + b.result()


def fib_fresh(n):
    """Every call a new task (no shared keys): a wide tree of waiting parents."""
    if n < 2:
        return n
    client = get_client()
    return sum(client.gather([client.submit(fib_fresh, n - i, pure=False) for i in (1, 2)]))


def fib_with_wait(n):
    if n < 2:
        return n
    client = get_client()
    futures = [client.submit(fib_with_wait, n - i) for i in (1, 2)]
    wait(futures)
    return sum(f.result() for f in futures)


def fib_with_worker_client(n):
    if n < 2:
        return n
    with worker_client() as client:
        assert current_job()[1].seceded  # the block runs outside the thread slots
        futures = client.map(fib_with_worker_client, [n - 1, n - 2])
        total = sum(client.gather(futures))
    assert not current_job()[1].seceded
    return total


async def async_fib(n):
    if n < 2:
        return n
    client = get_client()
    return sum(await client.gather([client.submit(async_fib, n - i) for i in (1, 2)]))


async def test_async_recursion_gives_its_slot_up_while_awaiting():
    async with (
        in_process_cluster(n_workers=2, threads_per_worker=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        assert await client.submit(async_fib, 15) == 610
        assert await client.submit(fib, 12) == 144
        assert await client.submit(fib_with_worker_client, 10) == 55


# --- explicit secede and rejoin --------------------------------------------------------------


def note_threads(log):
    log.append(threading.current_thread().name)
    return len(log)


def long_running_parent(n):
    """Secedes, then polls its children without a blocking wait: they must still run."""
    client = get_client()
    secede()
    children = [client.submit(time.sleep, 0.01, pure=False) for _ in range(n)]
    while not all(child.done() for child in children):
        time.sleep(0.005)
    rejoin()
    rejoin()  # a second rejoin does nothing
    return get_worker().state.executing.__len__()


async def test_an_explicitly_seceded_task_lets_others_run(trident_client):
    assert await trident_client.submit(long_running_parent, 4, pure=False) == 1


async def test_secede_and_rejoin_outside_a_task_raise():
    with pytest.raises(ValueError, match="inside a task"):
        secede()
    with pytest.raises(ValueError, match="inside a task"):
        rejoin()


ATTEMPTS: list[str] = []


def reschedule_once(tag):
    ATTEMPTS.append(tag)
    if ATTEMPTS.count(tag) == 1:
        raise Reschedule()
    return ATTEMPTS.count(tag)


async def async_reschedule_once(tag):
    return reschedule_once(tag)


async def test_reschedule_runs_the_task_again(trident_client):
    assert await trident_client.submit(reschedule_once, "sync", pure=False) == 2
    assert await trident_client.submit(async_reschedule_once, "async", pure=False) == 2
    info = await trident_client.scheduler_info()
    assert "erred" not in info["task_states"]


# --- deadlines and cancellation of seceded tasks ------------------------------------------------

ENDED: dict[str, float] = {}


async def sleeper(seconds, tag):
    try:
        await trio.sleep(seconds)
    finally:
        ENDED[tag] = time.time()


def parent_that_waits(tag, then=0.0):
    """Waits for a child that sleeps long; goes on for `then` seconds if the wait fails."""
    child = get_client().submit(sleeper, 30, f"{tag}-child", pure=False)
    try:
        return child.result()
    except CancelledError:
        ENDED[f"{tag}-resumed"] = time.time()  # the wait rejoined before raising
        time.sleep(then)
        ENDED[tag] = time.time()
        raise


async def wait_ended(*tags):
    with trio.fail_after(10):
        while not all(tag in ENDED for tag in tags):
            await trio.sleep(0.005)


def now():
    return time.time()


async def test_a_seceded_task_still_misses_its_deadline():
    async with (
        in_process_cluster(n_workers=1, threads_per_worker=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        parent = client.submit(parent_that_waits, "deadline", timeout=0.3, pure=False)
        with pytest.raises(TimeoutError, match="deadline"):
            await parent
        await wait_ended("deadline-child", "deadline")  # its child was cancelled too
        assert await client.submit(now, pure=False) >= ENDED["deadline"]


async def test_a_cancelled_seceded_task_holds_its_thread_until_it_returns():
    async with (
        in_process_cluster(n_workers=1, threads_per_worker=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        (handle,) = cluster.workers.values()
        parent = client.submit(parent_that_waits, "cancel", 0.3, pure=False)
        with trio.fail_after(10):
            while not handle.worker.state.seceded:
                await trio.sleep(0.005)
        await parent.cancel()
        after = client.submit(now, pure=False)
        ran_at = await after
        await wait_ended("cancel-child", "cancel")
        # The parent's wait ends with CancelledError; it rejoins (takes the only slot)
        # before going on for 0.3 s, so the other task never runs meanwhile.
        assert not ENDED["cancel-resumed"] <= ran_at <= ENDED["cancel"]
        assert ENDED["cancel"] - ENDED["cancel-resumed"] >= 0.3
        assert not handle.worker.state.seceded
