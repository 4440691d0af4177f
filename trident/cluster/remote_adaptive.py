"""`RemoteAdaptive`: adaptive scaling for a cluster whose scheduler runs elsewhere.

`Adaptive` reads the scheduler's state in its own process. A manager whose scheduler
runs on another host (ssh, a batch job, a Kubernetes pod) instead runs each round *on
the scheduler*, through `Client.run_on_scheduler`: there an `Adaptive` of the chosen
class (with its overridden hooks) is built around the live `Scheduler`, decides, and
retires the workers to close (their data moved first); the answer comes back, and the
manager's ``scale_up`` / ``scale_down`` act on it here. The rounds' memory (which
workers were named to close, how often) travels with each call, so the scheduler keeps
nothing between rounds. `ClusterManager.adapt` picks this class when the manager has no
in-process scheduler.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from ..client.client import Client
from .adaptive import Adaptive, call_cluster

logger = logging.getLogger("trident.cluster")


async def _round_on_scheduler(
    policy: type[Adaptive],
    options: dict[str, Any],
    close_counts: dict[str, int],
    dask_scheduler: Any = None,
) -> tuple[dict[str, Any], dict[str, int], list[str], int]:
    """One `Adaptive` round in the scheduler's process: (recommendation, the updated
    close counts, addresses retired, workers before the round)."""
    deciding = policy(scheduler=dask_scheduler, cluster=None, **options)
    deciding.close_counts = dict(close_counts)
    current = len(dask_scheduler.state.workers)
    recommendation = deciding.recommendations()
    retired: list[str] = []
    if recommendation["status"] == "down":
        retired = list(await dask_scheduler.retire_workers(recommendation["workers"], close=True))
    return recommendation, deciding.close_counts, retired, current


class RemoteAdaptive(Adaptive):
    """`Adaptive` for a cluster manager whose scheduler is remote (see the module).

    Takes `Adaptive`'s arguments (`cluster` is required: a `ClusterManager`), and
    ``policy``: the `Adaptive` class whose hooks decide on the scheduler (default
    `Adaptive`; it must be importable there).
    """

    def __init__(self, *args: Any, policy: type[Adaptive] = Adaptive, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.cluster is None:
            raise ValueError("RemoteAdaptive needs the cluster it scales")
        self.policy = policy
        self._options = {
            "interval": self.interval,
            "startup_cost": self.startup_cost,
            "scale_factor": self.scale_factor,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "wait_count": self.wait_count,
            "target_duration": self.target_duration,
            **self._workers_to_close_kwargs,
        }
        self._client: Client | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """As `Adaptive.run`, over one client connection to the scheduler."""
        cluster = self.cluster
        async with Client(
            cluster.scheduler_address,
            security=cluster.security,
            asynchronous=True,
            set_as_default=False,
        ) as client:
            self._client = client
            try:
                await super().run(task_status=task_status)
            finally:
                self._client = None

    async def adapt(self) -> None:
        """Run one round on the scheduler, then scale up or down here. A checkpoint."""
        if self._client is None:
            raise RuntimeError("RemoteAdaptive.adapt runs inside RemoteAdaptive.run")
        recommendation, self.close_counts, retired, current = await self._client.run_on_scheduler(
            _round_on_scheduler, self.policy, self._options, self.close_counts
        )
        status = recommendation.pop("status")
        if status == "up":
            self.log.append((time.time(), "up", recommendation))
            await call_cluster(self.cluster.scale_up, **recommendation)
            self.scaled_up += max(0, int(recommendation.get("n", current)) - current)
            logger.info("adaptive: %d -> %s workers", current, recommendation.get("n"))
        elif status == "down" and retired:
            self.retired += len(retired)
            self.log.append((time.time(), "down", retired))
            logger.info("adaptive: retired %d workers", len(retired))
            await call_cluster(self.cluster.scale_down, retired)
