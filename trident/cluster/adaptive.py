"""`Adaptive`: grow a local cluster under load and shrink it when idle, without losing data.

Every `interval` the scheduler's state is summarised (`WorkSnapshot`) and
`recommend_workers` turns it into a number of workers, as dask's adaptive scaling does:
enough threads to finish the queued and running work within `target_duration`, more
when workers hold over 60% of their memory, never more workers than there are tasks to
run, and within ``[minimum, maximum]``. Growing happens at once. Shrinking happens
after the recommendation stayed below the current size `wait_count` times in a row,
and only by retiring idle workers: their data moves to the workers that stay first
(`Scheduler.retire_workers`), so nothing is lost or recomputed.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING

import attrs
import trio

from .._public import publish
from ..scheduler.data_movement import workers_to_close
from ..scheduler.state import SchedulerState

if TYPE_CHECKING:
    from .local import LocalCluster

logger = logging.getLogger("trident.cluster")

#: How many ready tasks are looked at to estimate the work waiting for a worker.
READY_SAMPLE = 100
#: Workers holding more than this fraction of their memory limits ask for more workers.
MEMORY_HIGH = 0.6

_DURATION = re.compile(r"^\s*([0-9.eE+-]+)\s*(ms|s|m|h|us)?\s*$")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: float | str) -> float:
    """Seconds from a number or text like ``"5s"``, ``"100ms"``, ``"2m"``."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


@attrs.frozen
class WorkSnapshot:
    """What adaptive scaling looks at in the scheduler's state."""

    workers: int
    threads: int
    #: estimated seconds of work assigned to workers
    occupancy: float
    #: tasks ready to run but not on a worker yet, and their estimated seconds
    ready: int
    ready_seconds: float
    #: tasks assigned to workers
    processing: int
    memory_used: int
    memory_limit: int


def snapshot(state: SchedulerState) -> WorkSnapshot:
    """Summarise `state` (reads at most `READY_SAMPLE` ready tasks' estimates)."""
    ready = 0
    sampled = 0.0
    for ts in state.ready_tasks():
        if ready < READY_SAMPLE:
            sampled += state.durations.get(ts.prefix)
        ready += 1
    if ready > READY_SAMPLE:
        sampled *= ready / READY_SAMPLE
    workers = state.workers.values()
    return WorkSnapshot(
        workers=len(state.workers),
        threads=sum(ws.nthreads for ws in workers),
        occupancy=sum(ws.occupancy for ws in workers),
        ready=ready,
        ready_seconds=sampled,
        processing=sum(len(ws.processing) + len(ws.long_running) for ws in workers),
        memory_used=sum(ws.nbytes for ws in workers),
        memory_limit=sum(ws.info.memory_limit for ws in workers),
    )


def recommend_workers(
    work: WorkSnapshot,
    *,
    threads_per_worker: int,
    target_duration: float,
    minimum: int,
    maximum: float,
) -> int:
    """How many workers the cluster should have for `work` (see the module docstring)."""
    threads = math.ceil((work.occupancy + work.ready_seconds) / max(target_duration, 1e-9))
    runnable = work.ready + work.processing
    threads = min(threads, runnable)  # a few long tasks do not need many workers
    if work.ready and not work.workers:
        threads = max(threads, 1)
    wanted = math.ceil(threads / max(threads_per_worker, 1))
    if work.memory_limit and work.memory_used > MEMORY_HIGH * work.memory_limit:
        wanted = max(wanted, work.workers + 1)
    return int(max(minimum, min(maximum, wanted)))


class Adaptive:
    """Adaptive scaling of a `LocalCluster`; start it with `LocalCluster.adapt`.

    Arguments:
        cluster: the cluster to scale.
        minimum: the fewest workers to keep.
        maximum: the most workers to start.
        target_duration: how long the work in sight should take (seconds or text such
            as ``"5s"``); less means more workers.
        wait_count: consecutive recommendations to shrink needed before workers retire.
        interval: seconds (or ``"1s"``) between recommendations.

    Attributes: `recommendations` (the latest ones, newest last), `scaled_up` and
    `retired` (how many workers it started and retired).
    """

    def __init__(
        self,
        cluster: LocalCluster,
        minimum: int = 0,
        maximum: float = math.inf,
        target_duration: float | str = "5s",
        wait_count: int = 3,
        interval: float | str = "1s",
    ):
        if minimum < 0 or maximum < minimum:
            raise ValueError(f"need 0 <= minimum <= maximum, got {minimum} and {maximum}")
        self.cluster = cluster
        self.minimum = int(minimum)
        self.maximum = maximum
        self.target_duration = parse_duration(target_duration)
        self.wait_count = max(1, int(wait_count))
        self.interval = parse_duration(interval)
        self.recommendations: list[int] = []
        self.scaled_up = 0
        self.retired = 0
        self._below = 0
        self._scope: trio.CancelScope | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"<Adaptive minimum={self.minimum} maximum={self.maximum}>"

    async def run(self) -> None:
        """Scale every `interval` until `stop` (runs in the cluster's loop)."""
        with trio.CancelScope() as scope:
            self._scope = scope
            while not self._stopped:
                try:
                    await self.adapt()
                except Exception:
                    logger.exception("adaptive scaling failed; trying again")
                await trio.sleep(self.interval)

    def stop(self) -> None:
        """Stop scaling; the workers stay as they are. Safe from any thread."""
        self._stopped = True
        if self._scope is not None:
            self.cluster._call_in_loop(self._scope.cancel)

    def recommend(self) -> int:
        """The number of workers the cluster should have now."""
        runtime = self.cluster._runtime
        assert runtime is not None
        return recommend_workers(
            snapshot(runtime.scheduler.state),
            threads_per_worker=self.cluster.threads_per_worker,
            target_duration=self.target_duration,
            minimum=self.minimum,
            maximum=self.maximum,
        )

    async def adapt(self) -> None:
        """Look once and grow or shrink the cluster."""
        runtime = self.cluster._runtime
        assert runtime is not None
        current = len(runtime.workers)
        target = self.recommend()
        self.recommendations = [*self.recommendations[-99:], target]
        if target > current:
            self._below = 0
            await runtime.scale_to(self.cluster._specs(target))
            self.scaled_up += target - current
            logger.info("adaptive: %d -> %d workers", current, target)
        elif target < current:
            self._below += 1
            if self._below >= self.wait_count:
                self._below = 0
                await self._shrink(current - target)
        else:
            self._below = 0

    async def _shrink(self, excess: int) -> None:
        runtime = self.cluster._runtime
        assert runtime is not None
        scheduler = runtime.scheduler
        state = scheduler.state
        holds_data = any(ws.nbytes or ws.has_what for ws in state.workers.values())
        chosen = workers_to_close(
            state.workers,
            excess,
            exclude=state.data_movement.retiring,
            keep=max(self.minimum, 1 if holds_data else 0),
        )
        if not chosen:
            return
        retired = await scheduler.retire_workers([ws.address for ws in chosen], close=True)
        self.retired += len(retired)
        if retired:
            logger.info("adaptive: retired %d workers", len(retired))
        leaving = [h for h in runtime.workers.values() if h.address in retired]
        with trio.move_on_after(10):  # the retired workers stop by themselves
            for handle in leaving:
                await handle.left.wait()


publish(globals())
