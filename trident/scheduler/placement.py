"""Where tasks run: worker choice, task duration estimates and per-worker saturation.

A ready task goes to the worker that minimises its estimated start time: the work
already queued there (occupancy per thread) plus the time to fetch the dependency
bytes it does not hold. Root tasks (no dependencies, no restrictions) are instead held
in the scheduler's queue and handed out while a worker is below its saturation limit:
its thread count plus enough extra tasks to cover `PIPELINE_SECONDS` of work, so short
tasks stream without round-trip gaps while long tasks never pile up on one worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .records import TaskRecord, WorkerRecord

#: Assumed duration of a task whose function prefix has never finished.
UNKNOWN_DURATION = 0.5
#: Assumed network bandwidth for dependency transfers, bytes per second.
BANDWIDTH = 100e6
#: How much queued work (seconds per thread) keeps a worker busy between round trips.
PIPELINE_SECONDS = 0.05
#: Upper bound on extra queued root tasks per thread, whatever their duration.
MAX_EXTRA_PER_THREAD = 256
#: How many idle workers are considered besides those holding a task's dependencies.
IDLE_CANDIDATES = 16
#: Prefixes whose durations are kept; the oldest is forgotten beyond this (user-made keys
#: may give every task its own prefix).
PREFIXES_KEPT = 10_000


class DurationEstimates:
    """Exponentially weighted task duration per key prefix."""

    __slots__ = ("_by_prefix",)

    def __init__(self) -> None:
        self._by_prefix: dict[str, float] = {}

    def get(self, prefix: str) -> float:
        return self._by_prefix.get(prefix, UNKNOWN_DURATION)

    def observe(self, prefix: str, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        by_prefix = self._by_prefix
        old = by_prefix.get(prefix)
        if old is None:
            if len(by_prefix) >= PREFIXES_KEPT:
                del by_prefix[next(iter(by_prefix))]
            by_prefix[prefix] = seconds
        else:
            by_prefix[prefix] = 0.5 * old + 0.5 * seconds

    def known(self, prefix: str) -> bool:
        return prefix in self._by_prefix


def saturation_limit(ws: WorkerRecord, duration: float) -> int:
    """How many tasks `ws` may hold (running plus queued) for tasks of `duration`."""
    per_thread = min(MAX_EXTRA_PER_THREAD, int(PIPELINE_SECONDS / max(duration, 1e-6)))
    return ws.nthreads * (1 + per_thread)


def allowed_workers(
    ts: TaskRecord, workers: Mapping[str, WorkerRecord]
) -> Iterable[WorkerRecord] | None:
    """Workers that satisfy the task's restrictions and resources (None: no constraint).

    A restriction names a worker by address or name, or every worker of a host by the
    host part of their addresses (as dask's host restrictions).
    """
    pool: Iterable[WorkerRecord] | None = None
    if ts.restrictions is not None:
        names = ts.restrictions
        pool = [
            ws
            for ws in workers.values()
            if ws.address in names or ws.name in names or ws.host in names
        ]
        if not pool and ts.allow_other_workers:
            pool = None
    if ts.resources:
        needs = ts.resources
        base = workers.values() if pool is None else pool
        pool = [
            ws
            for ws in base
            if all(ws.info.resources.get(name, 0.0) >= amount for name, amount in needs.items())
        ]
    return pool


def choose_worker(
    ts: TaskRecord,
    workers: Mapping[str, WorkerRecord],
    idle: Mapping[WorkerRecord, None],
) -> WorkerRecord | None:
    """The best worker for a ready task, or None if no worker may run it.

    Costs O(dependencies x replicas + candidates): the bytes each candidate already
    holds are summed once, not once per candidate.
    """
    held: dict[WorkerRecord, int] = {}
    total = 0
    for dep in ts.dependencies:
        nbytes = dep.nbytes
        total += nbytes
        for ws in dep.who_has:
            held[ws] = held.get(ws, 0) + nbytes
    constrained = allowed_workers(ts, workers)
    if constrained is not None:
        candidates = list(constrained)
    elif ts.dependencies:
        # Locality first: a holder of the inputs with a free thread beats moving data.
        candidates = [ws for ws in held if ws in idle]
        if not candidates:
            pool = dict.fromkeys(held)
            for i, ws in enumerate(idle):
                if i >= IDLE_CANDIDATES:
                    break
                pool[ws] = None
            candidates = list(pool) or list(workers.values())
    elif idle:
        return next(iter(idle))
    else:
        candidates = list(workers.values())
    if not candidates:
        return None

    def cost(ws: WorkerRecord) -> tuple[float, int]:
        transfer = (total - held.get(ws, 0)) / BANDWIDTH
        return ws.occupancy / ws.nthreads + transfer, len(ws.processing)

    return min(candidates, key=cost)
