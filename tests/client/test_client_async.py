"""The asynchronous client on an in-process cluster, under trio (the plugin's fixtures)."""

from __future__ import annotations

import gc
import itertools
import threading
import traceback

import numpy as np
import pytest
import trio
import trio.lowlevel

import trident
from trident import CancelledError, Client, Future, as_completed, fire_and_forget, wait

from ..polling import wait_until

calls = itertools.count()
cancelled_runs: list[str] = []


def inc(x):
    return x + 1


def add(a, b=0):
    return a + b


def count_call(x):
    next(calls)
    return x


def boom(x=None):
    raise ValueError(f"boom {x}")


def total(*parts, extra=None):
    def flat(x):
        return sum(flat(i) for i in x) if isinstance(x, (list, tuple)) else x

    return flat(parts) + sum((extra or {}).values())


async def slow_async(seconds, tag):
    try:
        await trio.sleep(seconds)
        return tag
    finally:
        cancelled_runs.append(tag)


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


async def test_submit_and_await(trident_client):
    future = trident_client.submit(inc, 1)
    assert await future == 2
    assert await future.result() == 2
    assert future.status == "finished"
    assert future.done()
    assert "finished" in repr(future)
    assert "int" in repr(future)


async def test_map_and_gather_nested_structures(trident_client):
    futures = trident_client.map(add, range(10), range(10))
    assert await trident_client.gather(futures) == [2 * i for i in range(10)]
    nested = {"a": futures[:2], "b": (futures[2], {"c": futures[3]}), "d": 7}
    assert await trident_client.gather(nested) == {"a": [0, 2], "b": (4, {"c": 6}), "d": 7}
    assert await trident_client.gather(futures[4]) == 8


async def test_futures_inside_arguments_become_dependencies(trident_client):
    a = trident_client.submit(inc, 1)
    b = trident_client.submit(inc, 2)
    c = trident_client.submit(total, [a, (b, 10)], extra={"x": a})
    assert await c == 2 + 3 + 10 + 2


async def test_data_moves_between_workers(trident_client, trident_cluster):
    names = list(trident_cluster.workers)
    a = trident_client.submit(lambda: np.arange(1000), workers=[names[0]], pure=False)
    b = trident_client.submit(lambda x: x.sum(), a, workers=[names[1]], pure=False)
    assert await b == 499500
    where = await trident_client.who_has([a, b])
    addresses = {h.name: h.address for h in trident_cluster.workers.values()}
    assert where[a.key] == [addresses[names[0]]]
    assert where[b.key] == [addresses[names[1]]]


async def test_pure_calls_share_a_key_and_run_once(trident_client):
    before = next(calls)
    first = trident_client.submit(count_call, 123)
    second = trident_client.submit(count_call, 123)
    assert first.key == second.key
    assert first.key.startswith("count_call-")
    assert await first == await second == 123
    assert next(calls) == before + 2  # one run, plus our two reads of the counter
    assert trident_client.submit(count_call, 123, pure=False).key != first.key


async def test_errors_keep_their_type_traceback_and_worker(trident_client):
    future = trident_client.submit(boom, 3)
    with pytest.raises(ValueError, match="boom 3") as info:
        await future
    assert any(
        "trident: raised by task" in note and "on worker" in note for note in info.value.__notes__
    )
    assert "boom" in "".join(traceback.format_tb(info.value.__traceback__))
    assert future.status == "error"
    assert isinstance(await future.exception(), ValueError)
    tb = await future.traceback()
    assert tb is not None
    assert traceback.extract_tb(tb)[-1].name == "boom"
    assert "error" in repr(future)
    assert "ValueError" in repr(future)


async def test_errors_flow_to_dependents_and_gather_can_skip_them(trident_client):
    bad = trident_client.submit(boom)
    dependent = trident_client.submit(inc, bad)
    good = trident_client.submit(inc, 1)
    with pytest.raises(ValueError, match="boom"):
        await dependent
    assert await trident_client.gather([good, bad, dependent], errors="skip") == [2]
    with pytest.raises(ValueError, match="boom"):
        await trident_client.gather([good, bad])


async def test_retries_rerun_a_flaky_task(trident_client):
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "ok"

    assert await trident_client.submit(flaky, retries=2, pure=False) == "ok"
    with pytest.raises(ValueError, match="boom"):
        await trident_client.submit(boom, retries=1, pure=False)


async def test_timeouts_raise_and_leave_the_client_usable(trident_client):
    future = trident_client.submit(slow_async, 5, "timeout-test", pure=False)
    with pytest.raises(TimeoutError):
        await future.result(timeout=0.05)
    with trio.move_on_after(0.05) as scope:
        await future
    assert scope.cancelled_caught
    assert future.status == "pending"
    assert await trident_client.submit(inc, 41) == 42
    await future.cancel()


async def test_cancel_really_cancels_async_tasks(trident_client):
    future = trident_client.submit(slow_async, 30, "cancel-me", pure=False)
    dependent = trident_client.submit(inc, future)
    workers = trident_client.cluster.workers.values()
    await wait_until(lambda: any(w.worker.state.executing for w in workers))
    await trident_client.cancel([future])
    assert future.cancelled()
    assert future.status == "cancelled"
    with pytest.raises(CancelledError):
        await future
    with pytest.raises(CancelledError):
        await dependent
    await wait_until(lambda: "cancel-me" in cancelled_runs)  # the task's finally block ran


GATE = threading.Event()


def wait_for_gate():
    return GATE.wait(10)


async def test_cancel_pending_sync_task(trident_client):
    GATE.clear()
    blockers = [trident_client.submit(wait_for_gate, pure=False) for _ in range(2)]
    queued = trident_client.submit(inc, 100)
    await queued.cancel()
    GATE.set()
    assert await trident_client.gather(blockers) == [True, True]
    assert queued.cancelled()


async def test_dropping_the_last_future_frees_worker_memory(trident_client, trident_cluster):
    future = trident_client.submit(lambda: np.ones(10_000), pure=False)
    await future
    key = future.key

    def held():
        return [h.name for h in trident_cluster.workers.values() if key in h.worker.data]

    assert held()
    del future
    gc.collect()
    await wait_until(lambda: not held())
    assert key not in trident_cluster.scheduler.state.tasks


async def test_scatter_shapes_broadcast_and_hashing(trident_client, trident_cluster):
    [x, y] = await trident_client.scatter([1, 2])
    assert await trident_client.submit(add, x, y) == 3
    mapping = await trident_client.scatter({"a": 10, "b": 20})
    assert set(mapping) == {"a", "b"}
    assert await mapping["b"] == 20
    single = await trident_client.scatter(np.arange(5))
    assert isinstance(single, Future)
    np.testing.assert_array_equal(await single, np.arange(5))
    again = await trident_client.scatter(np.arange(5))
    assert again.key == single.key
    unhashed = await trident_client.scatter(np.arange(5), hash=False)
    assert unhashed.key != single.key
    everywhere = await trident_client.scatter(7, broadcast=True)
    assert len((await trident_client.who_has(everywhere))[everywhere.key]) == len(
        trident_cluster.workers
    )


async def test_async_task_functions_run_in_the_worker_loop(trident_client):
    async def in_trio():
        await trio.lowlevel.checkpoint()
        return trio.lowlevel.current_task().name

    name = await trident_client.submit(in_trio, pure=False)
    assert isinstance(name, str)


async def test_wait_and_as_completed(trident_client):
    futures = trident_client.map(inc, range(20))
    done, not_done = await wait(futures)
    assert len(done) == 20
    assert not not_done
    slow = trident_client.submit(slow_async, 5, "wait-test", pure=False)
    quick = trident_client.submit(inc, 1000)
    done, not_done = await wait([slow, quick], return_when="FIRST_COMPLETED")
    assert quick in done
    assert slow in not_done
    with pytest.raises(TimeoutError):
        await wait([slow], timeout=0.05)
    await slow.cancel()
    seen = [f async for f in as_completed(trident_client.map(inc, range(5)))]
    assert sorted([await f for f in seen]) == [1, 2, 3, 4, 5]
    results = [
        r async for _, r in as_completed(trident_client.map(inc, range(3)), with_results=True)
    ]
    assert sorted(results) == [1, 2, 3]


async def test_as_completed_accepts_more_futures_while_iterating(trident_client):
    stream = as_completed([trident_client.submit(inc, 0)])
    count = 0
    async for future in stream:
        count += 1
        value = await future
        if value < 5:
            stream.add(trident_client.submit(inc, value))
    assert count == 5


forgotten_runs: list[str] = []


def remember(tag):
    forgotten_runs.append(tag)


async def test_fire_and_forget_runs_released_work(trident_client):
    future = trident_client.submit(remember, "fire-and-forget", pure=False)
    fire_and_forget(future)
    del future
    gc.collect()
    await wait_until(lambda: "fire-and-forget" in forgotten_runs)


async def test_futures_of_and_future_by_key(trident_client, trident_cluster):
    futures = trident_client.map(inc, range(3))
    await wait(futures)
    assert trident.futures_of({"x": [futures[0], (futures[1],)], "y": futures[2]}) == futures
    async with Client(trident_cluster, asynchronous=True, set_as_default=False) as other:
        attached = Future(futures[0].key, other)
        assert await attached == 1
        lost = Future("never-submitted", other)
        with pytest.raises(trident.FutureLostError):
            await lost


async def test_add_done_callback_runs_in_the_loop(trident_client):
    seen = trio.Event()
    results = []

    def callback(future):
        results.append(future.status)
        seen.set()

    future = trident_client.submit(inc, 5)
    future.add_done_callback(callback)
    await seen.wait()
    seen = trio.Event()
    future.add_done_callback(callback)  # already done: runs at once
    await seen.wait()
    assert results == ["finished", "finished"]


async def test_scheduler_info_and_nthreads(trident_client, trident_cluster):
    info = await trident_client.scheduler_info()
    assert len(info["workers"]) == 2
    assert sum(trident_client.nthreads().values()) == 2
    assert trident_client.ncores() == trident_client.nthreads()


async def test_large_numpy_round_trip(trident_client):
    array = np.random.default_rng(0).random(2_000_000)
    [remote] = await trident_client.scatter([array])
    doubled = trident_client.submit(lambda x: x * 2, remote)
    np.testing.assert_array_equal(await doubled, array * 2)


async def test_closing_twice_and_using_after_close(trident_cluster):
    client = Client(trident_cluster, asynchronous=True, set_as_default=False)
    await client.__aenter__()
    pending = client.submit(slow_async, 30, "closed", pure=False)
    await client.close()
    await client.close()
    assert client.status == "closed"
    with pytest.raises(RuntimeError):
        client.submit(inc, 1)
    with pytest.raises(CancelledError):
        await pending
