"""Placement and stealing on an in-process cluster of two single-thread workers."""

from __future__ import annotations

import time

import trio

from trident import Client
from trident.testing import in_process_cluster


def short(x):
    return x + 1


def sleepy(seconds):
    time.sleep(seconds)
    return seconds


def mostly_fast(x):
    time.sleep(1.0 if x == 0 else 0.005)
    return x


async def test_a_short_task_does_not_wait_behind_a_long_one():
    with trio.fail_after(30):
        async with (
            in_process_cluster(n_workers=2, threads_per_worker=1) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            # the scheduler learns that `short` is fast
            assert await client.gather(client.map(short, range(20))) == list(range(1, 21))
            long = client.submit(sleepy, 1.5)
            await trio.sleep(0.1)  # the long task is running on one of the workers
            start = time.perf_counter()
            assert await client.submit(short, 100) == 101
            latency = time.perf_counter() - start
            assert not long.done()
            assert latency < 0.5, latency
            assert await long == 1.5


async def test_tasks_queued_behind_an_unexpectedly_long_one_are_stolen():
    with trio.fail_after(30):
        async with (
            in_process_cluster(n_workers=2, threads_per_worker=1) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            await client.gather(client.map(mostly_fast, range(1, 11)))  # known fast
            start = time.perf_counter()
            futures = client.map(mostly_fast, range(30))
            finished: list[float] = []
            async with trio.open_nursery() as nursery:
                for future in futures[1:]:

                    async def wait_for(future=future):
                        await future
                        finished.append(time.perf_counter() - start)

                    nursery.start_soon(wait_for)
            assert not futures[0].done()
            assert await client.gather(futures) == list(range(30))
            state = cluster.scheduler.state
            assert state.stealing.moved > 0
            # all 29 short tasks (about 0.15 s of work) finished before the 1 s one: none
            # stayed stranded behind it
            assert max(finished) < 0.9, max(finished)
