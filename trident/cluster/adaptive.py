"""`Adaptive`: grow a cluster under load and shrink it when idle, without losing data.

This is dask.distributed's `Adaptive`, with its arguments and its overridable hooks.
Every `interval` one round (`Adaptive.adapt`) asks `Adaptive.should_scale_up` (fewer
workers than `minimum`, work but no workers, `Adaptive.needs_cpu`,
`Adaptive.needs_memory`); when it says yes, the cluster's
``scale_up(**get_scale_up_kwargs())`` is called: by default ``scale_up(n=...)``, the
total number of workers wanted. Otherwise `Adaptive.workers_to_close` names idle workers
the cluster can spare; a worker named in `wait_count` rounds in a row is retired: its
data moves to the workers that stay first (`Scheduler.retire_workers`), so nothing is
lost or recomputed, and it is told to stop; then the cluster's ``scale_down(workers)``
gets the retired workers' addresses.

The cluster is any object with ``scale_up`` and ``scale_down`` methods, plain or
``async def``. Plain ones run in a worker thread (a slow one does not stall the
scheduler; it may call back into the loop with ``trio.from_thread``), and an awaitable
they return is awaited in the loop. `LocalCluster.adapt` starts an `Adaptive` for a
local cluster; for another cluster run one in the scheduler's trio loop, with
``async with Adaptive(scheduler, cluster) as adaptive:`` or
``await nursery.start(adaptive.run)``.

The number of workers wanted (`recommend_workers`) is enough threads to finish the
queued and running work, by the scheduler's duration estimates, within
`target_duration`; one more when workers hold over 60% of their memory; never more
threads than there are tasks to run; within ``[minimum, maximum]``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._public import publish
from ..scheduler.data_movement import workers_to_close
from ..scheduler.state import SchedulerState
from ..sizes import parse_duration as parse_duration

if TYPE_CHECKING:
    from ..scheduler.actor import Scheduler

logger = logging.getLogger("trident.cluster")

#: How many ready tasks are looked at to estimate the work waiting for a worker.
READY_SAMPLE = 100
#: Workers holding more than this fraction of their memory limits ask for more workers.
MEMORY_HIGH = 0.6
#: The keyword arguments `Adaptive` passes on to the scheduler's choice of workers to
#: close (`trident.scheduler.data_movement.workers_to_close`).
WORKERS_TO_CLOSE_OPTIONS = frozenset({"n", "exclude", "keep"})
#: How long `LocalCluster.scale_down` waits for retired workers to stop by themselves.
LEAVE_TIMEOUT = 10.0

Duration = float | str | timedelta


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

    @property
    def runnable(self) -> int:
        """Tasks that could use a thread now."""
        return self.ready + self.processing

    @property
    def seconds(self) -> float:
        """Estimated seconds of work in sight: running, assigned and ready."""
        return self.occupancy + self.ready_seconds


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
    threads = math.ceil(work.seconds / max(target_duration, 1e-9))
    threads = min(threads, work.runnable)  # a few long tasks do not need many workers
    if work.ready and not work.workers:
        threads = max(threads, 1)
    wanted = math.ceil(threads / max(threads_per_worker, 1))
    if work.memory_limit and work.memory_used > MEMORY_HIGH * work.memory_limit:
        wanted = max(wanted, work.workers + 1)
    return int(max(minimum, min(maximum, wanted)))


async def call_cluster(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a cluster's ``scale_up`` / ``scale_down``: ``async def`` methods in this
    loop, plain ones in a worker thread; an awaitable they return is awaited here."""
    if inspect.iscoroutinefunction(method):
        return await method(*args, **kwargs)
    call = functools.partial(method, *args, **kwargs)
    # Boxed: trio refuses a thread function that returns a coroutine.
    (result,) = await trio.to_thread.run_sync(lambda: (call(),))
    if inspect.isawaitable(result):
        result = await result
    return result


class Adaptive:
    """Adaptively allocate workers based on scheduler load (dask's `Adaptive`).

    Arguments:
        scheduler: the in-process `Scheduler` whose load is read; by default the
            cluster's (``cluster.scheduler``, as a `LocalCluster` has).
        cluster: what starts and stops workers: any object with ``scale_up(n)`` and
            ``scale_down(workers)`` methods or coroutine functions (``n``: the total
            number of workers wanted; ``workers``: addresses of workers already retired
            from the scheduler).
        interval: time between two rounds (seconds, a `timedelta`, or text such as
            ``"1s"``, ``"500ms"``).
        startup_cost: about how long a new worker takes to start: the cluster grows
            only when more than this much work per thread is waiting.
        scale_factor: when more workers are needed, the cluster grows to at least this
            many times its size (but not past the tasks there are to run).
        minimum: the fewest workers to keep.
        maximum: the most workers to have (None: no limit).
        wait_count: rounds in a row a worker must be named by `workers_to_close`
            before it is retired.
        target_duration: how long the work in sight should take; less means more
            workers.
        **kwargs: passed on to the scheduler's choice of workers to close: ``n`` (at
            most that many), ``exclude`` (addresses never to close), ``keep`` (the
            fewest workers to leave).

    Subclasses may override `needs_cpu`, `needs_memory`, `should_scale_up`,
    `workers_to_close` and `get_scale_up_kwargs`; every round goes through them.

    Attributes: `close_counts` (address -> rounds in a row it was named to close),
    `log` (``(time, "up" | "down", details)`` of what was done, newest last),
    `scaled_up` and `retired` (how many workers it asked for and retired).
    """

    def __init__(
        self,
        scheduler: Scheduler | None = None,
        cluster: Any = None,
        interval: Duration = "1s",
        startup_cost: Duration = "1s",
        scale_factor: float = 2,
        minimum: int = 0,
        maximum: float | None = None,
        wait_count: int = 3,
        target_duration: Duration = "5s",
        **kwargs: Any,
    ):
        maximum = math.inf if maximum is None else maximum
        if minimum < 0 or maximum < minimum:
            raise ValueError(f"need 0 <= minimum <= maximum, got {minimum} and {maximum}")
        if scale_factor < 1:
            raise ValueError(f"scale_factor must be at least 1, got {scale_factor}")
        unknown = set(kwargs) - WORKERS_TO_CLOSE_OPTIONS
        if unknown:
            raise TypeError(
                f"unexpected arguments {sorted(unknown)}: workers_to_close takes "
                f"{sorted(WORKERS_TO_CLOSE_OPTIONS)}"
            )
        self._scheduler = scheduler
        self.cluster = cluster
        self.interval = parse_duration(interval)
        self.startup_cost = parse_duration(startup_cost)
        self.scale_factor = scale_factor
        self.minimum = int(minimum)
        self.maximum = maximum
        self.wait_count = max(1, int(wait_count))
        self.target_duration = parse_duration(target_duration)
        self.close_counts: dict[str, int] = {}
        self.log: deque[tuple[float, str, Any]] = deque(maxlen=1000)
        self.scaled_up = 0
        self.retired = 0
        self._workers_to_close_kwargs = kwargs
        self._scope: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stopped = False
        self._nursery_manager: Any = None

    def __repr__(self) -> str:
        return f"<Adaptive minimum={self.minimum} maximum={self.maximum}>"

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler whose load is read: the one given, else the cluster's."""
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = getattr(self.cluster, "scheduler", None)
        if scheduler is None:
            raise RuntimeError(
                "Adaptive needs a scheduler: pass one, or a cluster with a running scheduler"
            )
        return scheduler

    # --- what the scheduler's state says ------------------------------------------------

    def _work(self) -> WorkSnapshot:
        return snapshot(self.scheduler.state)

    def _threads_per_worker(self, work: WorkSnapshot) -> int:
        threads = getattr(self.cluster, "threads_per_worker", None)
        if isinstance(threads, int) and threads > 0:
            return threads
        return max(1, round(work.threads / work.workers)) if work.workers else 1

    def _wanted(self, work: WorkSnapshot) -> int:
        return recommend_workers(
            work,
            threads_per_worker=self._threads_per_worker(work),
            target_duration=self.target_duration,
            minimum=self.minimum,
            maximum=self.maximum,
        )

    # --- the hooks (dask's names; subclasses may override them) -------------------------

    def needs_cpu(self) -> bool:
        """Whether the cluster is CPU constrained: more tasks could run than it has
        threads, and the work in sight per thread (by the scheduler's estimates) is
        more than both `target_duration` and `startup_cost`."""
        work = self._work()
        if work.runnable <= work.threads:
            return False
        per_thread = work.seconds / max(work.threads, 1)
        return per_thread > max(self.target_duration, self.startup_cost)

    def needs_memory(self) -> bool:
        """Whether the cluster is RAM constrained: its workers hold more than 60% of
        their memory limits together (False when no limits are known)."""
        work = self._work()
        return bool(work.memory_limit) and work.memory_used > MEMORY_HIGH * work.memory_limit

    def should_scale_up(self) -> bool:
        """Whether to add workers: when there are fewer than `minimum`, or (below
        `maximum`) when tasks wait and there are no workers, or `needs_cpu`, or
        `needs_memory`."""
        state = self.scheduler.state
        current = len(state.workers)
        if current < self.minimum:
            return True
        if current >= self.maximum:
            return False
        if not state.workers and any(True for _ in state.ready_tasks()):
            return True
        return self.needs_cpu() or self.needs_memory()

    def workers_to_close(self, **kwargs: Any) -> list[str]:
        """Addresses of workers the cluster can spare now: idle ones beyond the number
        wanted (or beyond `maximum`), holding the fewest bytes first, never below
        `minimum`, and never the last worker holding data. Keyword arguments (and those
        given to `Adaptive`) are ``n``, ``exclude`` and ``keep`` (see `Adaptive`)."""
        options = {**self._workers_to_close_kwargs, **kwargs}
        unknown = set(options) - WORKERS_TO_CLOSE_OPTIONS
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)}")
        state = self.scheduler.state
        current = len(state.workers)
        if current <= self.minimum:
            return []
        n = options.get("n", current - self._wanted(self._work()))
        if n <= 0:
            return []
        holds_data = any(ws.nbytes or ws.has_what for ws in state.workers.values())
        chosen = workers_to_close(
            state.workers,
            n,
            exclude={*state.data_movement.retiring, *options.get("exclude", ())},
            keep=max(self.minimum, 1 if holds_data else 0, options.get("keep", 0)),
        )
        return [ws.address for ws in chosen]

    def get_scale_up_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``cluster.scale_up``: ``{"n": total}``, the number
        of workers wanted (at least one more than now, at least `scale_factor` times as
        many while there are tasks for them, within `minimum` and `maximum`).
        Subclasses that add arguments should keep ``n``."""
        work = self._work()
        per_worker = self._threads_per_worker(work)
        useful = math.ceil(work.runnable / per_worker)  # workers that would all get a task
        grown = min(math.ceil(work.workers * self.scale_factor), useful)
        n = max(self._wanted(work), grown, work.workers + 1, self.minimum)
        return {"n": int(min(self.maximum, n))}

    # --- one round ----------------------------------------------------------------------

    def recommendations(self) -> dict[str, Any]:
        """Decide one round: ``{"status": "up", **get_scale_up_kwargs()}``,
        ``{"status": "down", "workers": [address, ...]}`` (workers named by
        `workers_to_close` `wait_count` rounds in a row) or ``{"status": "same"}``.
        Counts the rounds in `close_counts`; deciding to scale up resets them."""
        if self.should_scale_up():
            self.close_counts.clear()
            return {"status": "up", **self.get_scale_up_kwargs()}
        named = {w: self.close_counts.get(w, 0) + 1 for w in self.workers_to_close()}
        due = [w for w, count in named.items() if count >= self.wait_count]
        self.close_counts = {w: count for w, count in named.items() if count < self.wait_count}
        if due:
            return {"status": "down", "workers": due}
        return {"status": "same"}

    async def adapt(self) -> None:
        """Run one round in the scheduler's loop: scale up, retire workers, or do
        nothing (see `recommendations`). A checkpoint."""
        if self.cluster is None:
            raise RuntimeError("Adaptive needs a cluster with scale_up and scale_down")
        current = len(self.scheduler.state.workers)
        recommendation = self.recommendations()
        status = recommendation.pop("status")
        if status == "up":
            self.log.append((time.time(), "up", recommendation))
            await call_cluster(self.cluster.scale_up, **recommendation)
            self.scaled_up += max(0, int(recommendation.get("n", current)) - current)
            logger.info("adaptive: %d -> %s workers", current, recommendation.get("n"))
        elif status == "down":
            await self._retire(recommendation["workers"])

    async def _retire(self, addresses: list[str]) -> None:
        retired = list(await self.scheduler.retire_workers(addresses, close=True))
        if not retired:  # their data had nowhere to go
            return
        self.retired += len(retired)
        self.log.append((time.time(), "down", retired))
        logger.info("adaptive: retired %d workers", len(retired))
        await call_cluster(self.cluster.scale_down, retired)

    # --- running ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a round every `interval` until `stop` is called or the caller's scope is
        cancelled. Run it in the scheduler's trio loop (``nursery.start(adaptive.run)``);
        a round that fails is logged and the next one tries again."""
        with trio.CancelScope() as scope:
            self._scope = scope
            self._token = trio.lowlevel.current_trio_token()
            if self._stopped:
                scope.cancel()
            task_status.started()
            while True:
                try:
                    await self.adapt()
                except Exception:
                    logger.exception("adaptive scaling failed; trying again")
                await trio.sleep(self.interval)

    def stop(self) -> None:
        """Stop scaling; the workers stay as they are. Safe from any thread."""
        self._stopped = True
        scope, token = self._scope, self._token
        if scope is None or token is None:
            return
        try:
            here = trio.lowlevel.current_trio_token() is token
        except RuntimeError:
            here = False
        if here:
            scope.cancel()
        else:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scope.cancel)

    async def __aenter__(self) -> Adaptive:
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        await nursery.start(self.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.stop()
        manager, self._nursery_manager = self._nursery_manager, None
        return await manager.__aexit__(exc_type, exc, tb)


publish(globals())
