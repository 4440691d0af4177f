"""Actors written for asyncio (as dask runs them) next to trio and anyio actors."""

from __future__ import annotations

import asyncio
import threading
import time
from asyncio import Queue as AsyncioQueue

import anyio
import pytest
import trio

from trident import get_worker

from ..polling import wait_until


class Gate:
    """One method waits on an asyncio.Event that another sets."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.waiting = 0

    async def wait_open(self) -> str:
        self.waiting += 1
        await self.ready.wait()
        return "through"

    async def open(self) -> None:
        self.ready.set()

    def is_open(self) -> bool:
        return self.ready.is_set()


class Napper:
    """asyncio.sleep only in its methods: found from the code of the class."""

    def __init__(self) -> None:
        self.finished: list[str] = []
        self.loops: set[int] = set()

    async def nap(self, seconds: float, tag: str) -> str:
        self.loops.add(id(asyncio.get_running_loop()))
        try:
            await asyncio.sleep(seconds)
        finally:
            self.finished.append(tag)
        return tag

    async def where(self) -> str:
        return get_worker().address

    def loop_count(self) -> int:
        return len(self.loops)


class Mailroom:
    """An asyncio.Queue, made in a method and shared across calls."""

    def __init__(self) -> None:
        self.queue: AsyncioQueue[int] | None = None

    def _queue(self) -> AsyncioQueue[int]:
        if self.queue is None:
            self.queue = AsyncioQueue()
        return self.queue

    async def put(self, item: int) -> None:
        await self._queue().put(item)

    async def get(self) -> int:
        return await self._queue().get()


class TrioNapper:
    async def nap(self, seconds: float) -> str:
        await trio.sleep(seconds)
        return trio.lowlevel.current_root_task().name  # only inside trio

    async def both(self) -> str:
        # Names asyncio too, but trio is what it needs: trio wins.
        assert asyncio.iscoroutinefunction(self.nap)
        with trio.move_on_after(0.01):
            await trio.sleep_forever()
        return "trio"


class AnyioNapper:
    def __init__(self) -> None:
        self.thread = threading.get_ident()

    async def nap(self, seconds: float) -> str:
        await anyio.sleep(seconds)
        import sniffio

        return sniffio.current_async_library()


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


async def test_an_asyncio_event_set_by_one_method_releases_another(trident_client):
    gate = trident_client.actor(Gate)
    waiters = [gate.wait_open() for _ in range(3)]

    async def all_waiting() -> bool:
        return await gate.waiting == 3

    await wait_until(all_waiting)
    assert not await gate.is_open()
    assert not any(w.done() for w in waiters)
    await gate.open()
    assert await trident_client.gather(waiters) == ["through"] * 3
    assert await gate.is_open()


async def test_asyncio_sleep_runs_concurrently_in_one_loop_per_actor(trident_client):
    napper = trident_client.actor(Napper, max_concurrency=4)
    start = time.perf_counter()
    tags = await trident_client.gather([napper.nap(0.3, f"n{i}") for i in range(4)])
    assert tags == ["n0", "n1", "n2", "n3"]
    assert time.perf_counter() - start < 1.0, "the four naps overlapped"
    assert await napper.loop_count() == 1
    assert (await napper.where()).startswith("inproc://"), "get_worker works there"


async def test_cancelling_an_asyncio_method_runs_its_finally(trident_client):
    napper = trident_client.actor(Napper)
    call = napper.nap(30, "cancel-me")
    await trio.sleep(0.1)
    await call.cancel()
    assert call.cancelled()

    async def finally_ran() -> bool:
        return "cancel-me" in await napper.finished

    await wait_until(finally_ran)
    assert await napper.nap(0, "after") == "after"


async def test_an_asyncio_queue_carries_items_across_calls(trident_client):
    mailroom = trident_client.actor(Mailroom)
    first = mailroom.get()  # waits for an item
    await trio.sleep(0.05)
    assert not first.done()
    for item in (1, 2, 3):
        await mailroom.put(item)
    assert await first == 1
    assert [await mailroom.get(), await mailroom.get()] == [2, 3]


async def test_trio_and_anyio_actors_keep_running_in_the_workers_trio_loop(trident_client):
    trio_napper = trident_client.actor(TrioNapper)
    anyio_napper = trident_client.actor(AnyioNapper)
    assert await trio_napper.nap(0.01)
    assert await trio_napper.both() == "trio"
    assert await anyio_napper.nap(0.01) == "trio"


async def test_an_asyncio_actor_on_a_closing_worker_is_answered(trident_cluster_options):
    from trident import Client
    from trident.testing import in_process_cluster

    async with (
        in_process_cluster(**trident_cluster_options) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        gate = client.actor(Gate)
        assert not await gate.is_open()
        threads = {t.name for t in threading.enumerate()}
        assert any(name.startswith("trident-actor-asyncio-") for name in threads)
    # the conftest fails the test if the actor's asyncio thread outlived the cluster
