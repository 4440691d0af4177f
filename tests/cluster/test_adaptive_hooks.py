"""`Adaptive` as dask documents it: any cluster object with ``scale_up`` / ``scale_down``
(plain or async methods) driven from a real scheduler's load, the overridable hooks,
`minimum` / `maximum`, and `wait_count` rounds before a worker is retired."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import trio

from trident import Adaptive, Client, LocalCluster, Scheduler, Worker
from trident.comm.transports import unique_inproc_address
from trident.sizes import parse_duration
from trident.testing import in_process_cluster


def work(x, busy=0.1):
    time.sleep(busy)
    return x


async def _run_worker(worker: Worker, scope: trio.CancelScope, *, task_status) -> None:
    with scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            task_status.started()


class ToyCluster:
    """Starts and stops in-process workers of `scheduler`; records every call."""

    def __init__(self, scheduler: Scheduler, nursery: trio.Nursery):
        self.scheduler = scheduler
        self.nursery = nursery
        self.calls: list[tuple] = []
        self.running: dict[str, trio.CancelScope] = {}

    async def start_workers(self, n: int) -> None:
        """Start workers until the scheduler has `n` (each is registered on return)."""
        for _ in range(n - len(self.scheduler.state.workers)):
            worker = Worker(self.scheduler.address, nthreads=1)
            scope = trio.CancelScope()
            await self.nursery.start(_run_worker, worker, scope)
            self.running[worker.address] = scope

    async def stop_workers(self, addresses: list[str]) -> None:
        for address in addresses:
            self.running.pop(address).cancel()  # retired with close=True: stopped already


class AsyncToyCluster(ToyCluster):
    async def scale_up(self, n, **kwargs):
        self.calls.append(("up", n, kwargs))
        await self.start_workers(n)

    async def scale_down(self, workers):
        self.calls.append(("down", sorted(workers)))
        await self.stop_workers(workers)


class SyncToyCluster(ToyCluster):
    """Plain methods, as dask's MyCluster example has; they run in a worker thread."""

    def scale_up(self, n, **kwargs):
        self.calls.append(("up", n, kwargs))
        trio.from_thread.run(self.start_workers, n)

    def scale_down(self, workers):
        self.calls.append(("down", sorted(workers)))
        trio.from_thread.run(self.stop_workers, workers)


def scheduler_actor() -> Scheduler:
    return Scheduler(unique_inproc_address("scheduler"))


async def wait_until(condition, timeout: float = 20) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def test_durations_are_parsed_as_dask_writes_them():
    assert parse_duration("1s") == 1.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("5 minutes") == 300.0
    assert parse_duration("2h") == 7200.0
    assert parse_duration(2) == 2.0
    assert parse_duration(timedelta(milliseconds=250)) == 0.25
    for bad in ("soon", "-1s", "1 parsec"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
    adaptive = Adaptive(interval="1000 ms", startup_cost=timedelta(seconds=3))
    assert adaptive.interval == 1.0
    assert adaptive.startup_cost == 3.0
    assert adaptive.target_duration == 5.0
    assert adaptive.maximum == float("inf")
    with pytest.raises(TypeError, match="workers_to_close"):
        Adaptive(memory_ratio=2)


@pytest.mark.parametrize("cluster_class", [SyncToyCluster, AsyncToyCluster])
async def test_any_cluster_with_scale_up_and_scale_down_grows_and_shrinks(cluster_class):
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(scheduler_actor().serve)
        toy = cluster_class(scheduler, nursery)
        async with (
            Adaptive(
                scheduler, toy, interval="10ms", startup_cost="10ms", target_duration="50ms",
                minimum=1, maximum=3, wait_count=3,
            ) as adaptive,
            Client(scheduler.address, asynchronous=True, set_as_default=False) as client,
        ):  # fmt: skip
            await wait_until(lambda: len(scheduler.state.workers) == 1)  # the minimum
            assert toy.calls == [("up", 1, {})]
            futures = client.map(work, range(24))
            peak = 0
            with trio.fail_after(30):
                while not all(f.done() for f in futures):
                    peak = max(peak, len(scheduler.state.workers))
                    await trio.sleep(0.005)
            assert await client.gather(futures) == list(range(24))
            assert peak == 3  # grew under load, never past the maximum
            del futures
            await wait_until(lambda: len(scheduler.state.workers) == 1)
            await wait_until(lambda: adaptive.retired >= 2)  # the count follows the scheduler
        ups = [call[1] for call in toy.calls if call[0] == "up"]
        downs = [address for call in toy.calls if call[0] == "down" for address in call[1]]
        assert max(ups) == 3
        assert all(1 <= n <= 3 for n in ups)
        assert len(downs) == adaptive.retired
        assert set(downs).isdisjoint(scheduler.state.workers)
        assert [entry[1] for entry in adaptive.log].count("down") >= 1
        nursery.cancel_scope.cancel()


class Hooks(Adaptive):
    """Every hook overridden: the rounds must go through these."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.closing = False
        self.asked: list[str] = []

    def should_scale_up(self):
        self.asked.append("should_scale_up")
        return len(self.scheduler.state.workers) < 2

    def get_scale_up_kwargs(self):
        return {"n": 2, "flavour": "small"}

    def workers_to_close(self, **kwargs):
        return sorted(self.scheduler.state.workers)[:1] if self.closing else []


class AlwaysBusy(Adaptive):
    def needs_cpu(self):
        return True


class BusyForGood(AlwaysBusy):
    def workers_to_close(self, **kwargs):
        return []


class ShortOfMemory(Adaptive):
    def needs_memory(self):
        return True


async def test_hooks_overridden_in_a_subclass_are_used():
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(scheduler_actor().serve)
        toy = AsyncToyCluster(scheduler, nursery)
        async with Hooks(scheduler, toy, interval="10ms", wait_count=2) as adaptive:
            await wait_until(lambda: len(scheduler.state.workers) == 2)
            assert toy.calls[0] == ("up", 2, {"flavour": "small"})
            assert "should_scale_up" in adaptive.asked
            first = sorted(scheduler.state.workers)[0]
            adaptive.closing = True
            await wait_until(lambda: any(call[0] == "down" for call in toy.calls))
            assert ("down", [first]) in toy.calls
        # needs_cpu / needs_memory feed the default should_scale_up, up to the maximum
        for cls in (AlwaysBusy, ShortOfMemory):
            toy = AsyncToyCluster(scheduler, nursery)
            adaptive = cls(scheduler, toy, maximum=len(scheduler.state.workers) + 2)
            await adaptive.adapt()
            await adaptive.adapt()
            await adaptive.adapt()
            assert [call[1] for call in toy.calls] == [adaptive.maximum - 1, adaptive.maximum]
            assert len(scheduler.state.workers) == adaptive.maximum
            assert not adaptive.should_scale_up()  # at the maximum
        nursery.cancel_scope.cancel()


async def test_wait_count_rounds_before_retiring_and_the_minimum_is_kept():
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(scheduler_actor().serve)
        toy = AsyncToyCluster(scheduler, nursery)
        await toy.start_workers(4)
        await wait_until(lambda: len(scheduler.state.workers) == 4)
        adaptive = Adaptive(scheduler, toy, minimum=2, wait_count=3)
        assert adaptive.recommendations() == {"status": "same"}
        assert adaptive.recommendations() == {"status": "same"}
        assert set(adaptive.close_counts.values()) == {2}
        # a round that wants more workers resets the count
        adaptive.minimum = 5
        assert adaptive.recommendations() == {"status": "up", "n": 5}
        assert adaptive.close_counts == {}
        adaptive.minimum = 2
        assert adaptive.recommendations() == {"status": "same"}
        assert adaptive.recommendations() == {"status": "same"}
        down = adaptive.recommendations()
        assert down["status"] == "down"
        assert len(down["workers"]) == 2
        assert set(down["workers"]) <= set(scheduler.state.workers)
        # a real round retires them from the scheduler, then tells the cluster
        for _ in range(3):
            await adaptive.adapt()
        await wait_until(lambda: len(scheduler.state.workers) == 2)
        assert len(toy.calls) == 1
        assert toy.calls[0][0] == "down"
        assert adaptive.workers_to_close() == []  # at the minimum
        nursery.cancel_scope.cancel()


async def test_local_cluster_adapt_takes_an_adaptive_subclass():
    async with in_process_cluster(n_workers=0) as cluster:
        adaptive = cluster.adapt(Adaptive=BusyForGood, maximum=2, interval="10ms")
        assert type(adaptive) is BusyForGood
        assert cluster.adaptive is adaptive
        await wait_until(lambda: len(cluster.workers) == 2)
        await trio.sleep(0.1)
        assert len(cluster.workers) == 2  # never past the maximum
        await cluster.scale(1)
        assert cluster.adaptive is None
        assert len(cluster.workers) == 1


def test_local_cluster_scale_up_and_scale_down_by_hand():
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        cluster.scale_up(3)
        assert len(cluster.workers) == 3
        cluster.scale_up(2)  # never shrinks
        assert len(cluster.workers) == 3
        leaving = sorted(h.address for h in cluster.workers.values())[:2]
        cluster.scale_down(leaving)
        assert not {h.address for h in cluster.workers.values()} & set(leaving)
        assert len(cluster.workers) == 1
        assert cluster.n_workers == 1
