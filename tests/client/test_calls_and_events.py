"""What real dask code calls beyond the reference: `Client.sync`, `run_coroutine`,
`get_restrictions`, `retry`, events by topic and the task stream (asynchronous client
under trio, on the plugin's in-process cluster)."""

from __future__ import annotations

import time

import pytest
import trio
import trio.lowlevel

from trident import Client

attempts: dict[str, int] = {}


def flaky(tag):
    """Fails on its first call for `tag`, works afterwards."""
    attempts[tag] = attempts.get(tag, 0) + 1
    if attempts[tag] == 1:
        raise ValueError(f"first try of {tag}")
    return tag


def inc(x):
    return x + 1


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


async def test_sync_runs_a_coroutine_function_in_the_clients_loop(trident_client):
    async def double(x):
        await trio.lowlevel.checkpoint()
        return 2 * x

    assert await trident_client.sync(double, 21) == 42


async def test_run_coroutine_runs_on_every_worker(trident_client, trident_cluster):
    async def where(offset, dask_worker=None):
        await trio.lowlevel.checkpoint()
        return dask_worker.address + offset

    found = await trident_client.run_coroutine(where, "!")
    assert found == {address: address + "!" for address in trident_client.nthreads()}
    assert len(found) == len(trident_cluster.workers)
    assert await trident_client.run_coroutine(where, "!", wait=False) is None
    with pytest.raises(TypeError, match="coroutine function"):
        trident_client.run_coroutine(inc, 1)


async def test_get_restrictions_follows_dasks_rules():
    da = pytest.importorskip("dask.array")
    x = da.ones(4, chunks=2)
    y = da.zeros(4, chunks=2)
    keys_x = list(x.__dask_keys__())
    keys_y = list(y.__dask_keys__())
    restrictions, loose = Client.get_restrictions(x, "alice", False)
    assert restrictions == {key: ["alice"] for key in keys_x}
    assert loose == []
    restrictions, loose = Client.get_restrictions([x, y], ["a", "b"], True)
    assert restrictions == {key: ["a", "b"] for key in keys_x + keys_y}
    assert sorted(loose) == sorted(keys_x + keys_y)
    delayed = pytest.importorskip("dask.delayed")
    p, q = delayed.delayed(inc)(1), delayed.delayed(inc)(2)
    restrictions, loose = Client.get_restrictions([p, q], {p: "a", (q,): ["b"]}, [q])
    assert restrictions == {p.key: ["a"], q.key: ["b"]}
    assert loose == [q.key]
    assert Client.get_restrictions(x, None, False) == ({}, [])


async def test_retry_runs_a_failed_task_and_its_failed_inputs_again(trident_client):
    a = trident_client.submit(flaky, "retry-a")
    b = trident_client.submit(inc, trident_client.submit(len, a))
    with pytest.raises(ValueError, match="first try"):
        await b
    assert a.status == "error"
    await b.retry()
    assert await b == len("retry-a") + 1
    assert await a == "retry-a"
    c = trident_client.submit(flaky, "retry-c")
    with pytest.raises(ValueError, match="first try"):
        await c
    await trident_client.retry([c, b])  # b finished: left alone
    assert await c == "retry-c"


async def test_events_are_stored_read_back_and_pushed_to_subscribers(trident_client):
    seen = []
    async_seen = []
    arrived = trio.Event()

    async def on_async(event):
        async_seen.append(event)
        arrived.set()

    trident_client.subscribe_topic("metrics", seen.append)
    trident_client.subscribe_topic("other", on_async)
    before = time.time()
    await trident_client.log_event("metrics", {"loss": 0.5})
    await trident_client.log_event(["metrics", "other"], [1, "two"])
    events = await trident_client.get_events("metrics")
    assert [msg for _, msg in events] == [{"loss": 0.5}, [1, "two"]]
    assert all(before <= stamp <= time.time() for stamp, _ in events)
    everything = await trident_client.get_events()
    assert set(everything) >= {"metrics", "other"}
    assert [msg for _, msg in everything["other"]] == [[1, "two"]]
    await arrived.wait()
    assert [msg for _, msg in seen] == [{"loss": 0.5}, [1, "two"]]
    assert [msg for _, msg in async_seen] == [[1, "two"]]
    trident_client.unsubscribe_topic("metrics")
    await trident_client.log_event("metrics", "after")
    assert (await trident_client.get_events("metrics"))[-1][1] == "after"
    assert len(seen) == 2
    with pytest.raises(ValueError, match="no event handler"):
        trident_client.unsubscribe_topic("metrics")
    assert await trident_client.get_events("never-used") == ()


async def test_get_task_stream_lists_recent_runs(trident_client):
    start = time.time()
    futures = trident_client.map(inc, range(5))
    await trident_client.gather(futures)
    records = await trident_client.get_task_stream(start=start)
    mine = {r["key"] for r in records}
    assert {f.key for f in futures} <= mine
    record = next(r for r in records if r["key"] == futures[0].key)
    assert record["name"] == "inc"
    assert record["status"] == "OK"
    assert record["worker"].startswith("inproc://")
    (span,) = record["startstops"]
    assert span["action"] == "compute"
    assert start - 1 <= span["start"] <= span["stop"] <= time.time() + 1
    assert len(await trident_client.get_task_stream(start="1h", count=2)) == 2
    assert await trident_client.get_task_stream(start=time.time() + 3600) == []
    with pytest.raises(ValueError, match="performance_report"):
        trident_client.get_task_stream(plot=True)
