"""`ClusterManager`: what a manager gets from the base class for its four hooks.

`ActorManager` is the smallest manager: its scheduler and workers are actors in the
cluster's own loop, and it reports no in-process scheduler (`scheduler` is None), so
everything goes the way it goes for a remote manager (ssh, batch, Kubernetes):
`scale` retires workers through a client before stopping them, and `adapt` decides on
the scheduler (`RemoteAdaptive`).
"""

from __future__ import annotations

import secrets
import time

import pytest
import trio

from trident import Client, ClusterManager, Security, Worker
from trident.cluster.lending import lend_client
from trident.cluster.remote_adaptive import RemoteAdaptive
from trident.scheduler.actor import Scheduler
from trident.worker.config import WorkerConfig


class Running:
    """A worker of `ActorManager`: the actor and the scope that stops it."""

    def __init__(self, worker: Worker, scope: trio.CancelScope):
        self.worker = worker
        self.scope = scope

    @property
    def address(self) -> str:
        return self.worker.address


class ActorManager(ClusterManager):
    """Scheduler and workers as actors in the cluster's loop; records the hook calls."""

    def __init__(self, n_workers: int = 2, *, worker_group_size: int = 1):
        super().__init__(
            security=Security(secrets.token_urlsafe(16)),
            n_workers=n_workers,
            asynchronous=True,
            worker_group_size=worker_group_size,
        )
        self.calls: list[tuple[str, str]] = []
        self._start()

    async def _start_scheduler(self) -> str:
        assert self._nursery is not None
        self._actor = Scheduler("tcp://127.0.0.1:0", security=self.security)
        await self._nursery.start(self._actor.serve)
        self.calls.append(("scheduler", self._actor.address))
        return self._actor.address

    async def _start_worker(self, name: str) -> Running:
        assert self._nursery is not None
        config = WorkerConfig(name=name, nthreads=1, listen_address="tcp://127.0.0.1:0")
        worker = Worker.from_config(
            self.scheduler_address, config, security=self.security, client_factory=lend_client
        )
        running = Running(worker, trio.CancelScope())
        await self._nursery.start(self._run_worker, name, running)
        self.calls.append(("start", name))
        return running

    async def _run_worker(self, name: str, running: Running, *, task_status) -> None:
        with running.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(running.worker.serve)
                task_status.started()
        self._worker_left(name, running)

    async def _stop_worker(self, name: str, handle: Running) -> None:
        self.calls.append(("stop", name))
        handle.scope.cancel()

    def _manager_log(self) -> str:
        return "\n".join(f"{what} {name}" for what, name in self.calls)


def inc(x):
    return x + 1


def slow(x):
    time.sleep(0.2)
    return x


async def _until(predicate, what: str, timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.05)


async def test_a_manager_starts_scales_with_retiring_and_closes():
    async with ActorManager(n_workers=2) as cluster:
        assert cluster.status == "running"
        assert sorted(cluster.workers) == ["0", "1"]
        assert (
            repr(cluster)
            == f"ActorManager({cluster.scheduler_address!r}, workers=2, status=running)"
        )
        assert cluster.dashboard_link is None
        async with Client(cluster, asynchronous=True) as client:
            futures = client.map(inc, range(50))
            assert await client.submit(sum, futures) == sum(range(1, 51))
            held = await client.has_what()
            assert all(held.values())  # both workers hold results
            await cluster.scale(1)  # the leaving worker is retired: its results move
            assert sorted(cluster.workers) == ["0"]
            assert await client.submit(sum, futures) == sum(range(1, 51))
            await cluster.scale(3)
            assert sorted(cluster.workers) == ["0", "2", "3"]  # new names, never reused
            assert len((await client.scheduler_info())["workers"]) == 3
            logs = await cluster.get_logs()
            assert "start 3" in logs["Cluster"]
            assert "Scheduler" in logs
        names_started = sorted(name for what, name in cluster.calls if what == "start")
    assert names_started == ["0", "1", "2", "3"]
    assert cluster.status == "closed"
    stopped = {name for what, name in cluster.calls if what == "stop"}
    # The rest are stopped at close; "1" is stopped by scale unless, retired, it had
    # already left by itself (the scheduler closes a retired worker), which is a race.
    assert stopped - {"1"} == {"0", "2", "3"}
    with pytest.raises(RuntimeError, match="closed"):
        await cluster.scale(1)


async def test_scale_counts_whole_groups_and_takes_jobs():
    async with ActorManager(n_workers=1, worker_group_size=2) as cluster:
        await cluster.scale(3)  # three workers need two groups
        assert len(cluster.workers) == 2
        await cluster.scale(jobs=1)
        assert len(cluster.workers) == 1
        with pytest.raises(ValueError, match="negative"):
            cluster.scale(jobs=-1)


async def test_adapt_decides_on_the_scheduler_for_a_manager_without_one_here():
    async with ActorManager(n_workers=2) as cluster:
        assert cluster.scheduler is None
        adaptive = cluster.adapt(minimum=0, maximum=2, interval=0.05, wait_count=2)
        assert isinstance(adaptive, RemoteAdaptive)
        await _until(lambda: not cluster.workers, "idle workers retired")
        assert adaptive.retired == 2
        async with Client(cluster, asynchronous=True) as client:
            futures = client.map(slow, range(8))
            assert await client.gather(futures) == list(range(8))
        assert adaptive.scaled_up >= 1
        assert any(what == "up" for _, what, _ in adaptive.log)
