"""Actors on an in-process cluster: calls, ordering, concurrency, errors, handles, cancel."""

from __future__ import annotations

import time
import traceback

import pytest
import trio

from trident import Actor, ActorFuture, as_completed, get_worker, wait

from ..polling import wait_until

events: list[str] = []


class Counter:
    def __init__(self, start: int = 0):
        self.n = start
        self.log: list[int] = []

    def incr(self, k: int = 1) -> int:
        self.n += k
        self.log.append(self.n)
        return self.n

    def history(self) -> list[int]:
        return self.log

    def boom(self) -> None:
        raise KeyError("no such thing")

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def where(self) -> str:
        return get_worker().address


class AsyncService:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def work(self, seconds: float, tag: str) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await trio.sleep(seconds)
            return tag
        finally:
            self.running -= 1
            events.append(f"finally {tag}")

    def peak_concurrency(self) -> int:
        return self.peak


class Relay:
    """An actor whose sync method waits for another actor."""

    def forward(self, counter: Actor, k: int) -> int:
        return counter.incr(k).result()

    async def forward_async(self, counter: Actor, k: int) -> int:
        return await counter.incr(k)


def bump(counter: Actor, k: int) -> int:
    return counter.incr(k).result()


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


async def test_submit_with_actor_true_gives_a_handle(trident_client):
    future = trident_client.submit(Counter, 10, actor=True)
    counter = await future
    assert isinstance(counter, Actor)
    assert "Counter" in repr(counter)
    call = counter.incr()
    assert isinstance(call, ActorFuture)
    assert await call == 11
    assert await counter.incr(5) == 16
    assert await counter.n == 16  # attribute read
    assert "incr" in dir(counter)


async def test_client_actor_returns_a_handle_at_once(trident_client):
    counter = trident_client.actor(Counter, 1)
    assert isinstance(counter, Actor)
    assert await counter.incr() == 2  # the call waits for the actor to start


async def test_actor_futures_work_with_gather_wait_and_as_completed(trident_client):
    counter = trident_client.actor(Counter)
    calls = [counter.incr() for _ in range(10)]
    assert await trident_client.gather(calls) == list(range(1, 11))
    done, not_done = await wait([counter.incr(), counter.incr()])
    assert len(done) == 2
    assert not not_done
    seen = [await f async for f in as_completed([counter.incr() for _ in range(3)])]
    assert sorted(seen) == [13, 14, 15]


async def test_sync_methods_run_one_at_a_time_in_call_order(trident_client):
    counter = trident_client.actor(Counter)
    await trident_client.gather([counter.incr() for _ in range(200)])
    assert await counter.history() == list(range(1, 201))


async def test_async_methods_run_concurrently_up_to_max_concurrency(trident_client):
    service = trident_client.actor(AsyncService, max_concurrency=3)
    start = time.perf_counter()
    tags = await trident_client.gather([service.work(0.2, f"t{i}") for i in range(6)])
    elapsed = time.perf_counter() - start
    assert tags == [f"t{i}" for i in range(6)]
    assert await service.peak_concurrency() == 3
    assert 0.35 < elapsed < 1.5  # two waves of three


async def test_errors_reach_the_caller_and_the_actor_keeps_serving(trident_client):
    counter = trident_client.actor(Counter)
    with pytest.raises(KeyError, match="no such thing") as info:
        await counter.boom()
    assert traceback.extract_tb(info.value.__traceback__)[-1].name == "boom"
    assert await counter.incr() == 1
    with pytest.raises(AttributeError, match="missing"):
        await counter._call("missing", (), {}, attribute=False)


async def test_an_actor_waiting_for_another_actor_does_not_deadlock(trident_client):
    counter = trident_client.actor(Counter)
    relay = trident_client.actor(Relay)
    assert await relay.forward(counter, 5) == 5
    assert await relay.forward_async(counter, 2) == 7


async def test_two_tasks_waiting_for_the_same_actor_do_not_deadlock(
    trident_client, trident_cluster
):
    counter = trident_client.actor(Counter)
    name = next(iter(trident_cluster.workers))
    futures = [trident_client.submit(bump, counter, i, workers=[name], pure=False) for i in (1, 2)]
    assert sorted(await trident_client.gather(futures)) in ([1, 3], [2, 3])


async def test_handles_travel_into_tasks_and_actor_methods(trident_client):
    counter = trident_client.actor(Counter)
    assert await trident_client.submit(bump, counter, 10, pure=False) == 10
    relay = trident_client.actor(Relay)
    assert await relay.forward(counter, 1) == 11
    future = trident_client.submit(Counter, 100, actor=True)
    assert await trident_client.submit(bump, future, 1, pure=False) == 101  # the future itself


async def test_cancelling_a_running_async_method_runs_its_finally(trident_client):
    service = trident_client.actor(AsyncService)
    call = service.work(30, "cancel-me")
    await wait_until(lambda: service.running)  # a count above 0
    await call.cancel()
    assert call.cancelled()
    await wait_until(lambda: "finally cancel-me" in events)
    assert await service.running == 0


async def test_cancelling_a_queued_sync_call_skips_it(trident_client):
    counter = trident_client.actor(Counter)
    busy = counter.slow(0.3)
    skipped = counter.incr(100)
    await skipped.cancel()
    assert await busy == 0.3
    assert await counter.n == 0


async def test_actors_are_released_with_their_last_handle(trident_client, trident_cluster):
    import gc

    counter = trident_client.actor(Counter)
    address = await counter.where()
    key = counter.key
    host = next(h.worker for h in trident_cluster.workers.values() if h.worker.address == address)
    assert key in host.actors
    del counter
    gc.collect()
    await wait_until(lambda: key not in host.actors)


async def test_futures_cannot_be_passed_to_actor_methods(trident_client):
    counter = trident_client.actor(Counter)
    with pytest.raises(TypeError, match="futures cannot be passed to actor methods"):
        counter.incr(trident_client.submit(len, "abc"))
