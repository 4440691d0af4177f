"""Where tasks run: worker choice, task duration estimates and per-worker backlog.

A worker's *backlog* is the work it is expected to do before it could start one more
task: the estimated durations of its queued tasks plus the estimated remaining time of
the ones it runs (see `backlog`). A ready task goes to the worker that minimises its
estimated start time: its backlog per thread plus the time to fetch the dependency
bytes it does not hold. Root tasks (no dependencies, no restrictions) are instead held
in the scheduler's queue and handed to a worker while it has a free thread or, beyond
its free threads, while its backlog per thread is under `PIPELINE_SECONDS` (`has_room`),
so short tasks stream without round-trip gaps while nothing queues behind a long task
that another worker could start now. Beyond one queued task per thread, those extra
root tasks are also bounded in bytes: the expected outputs of a worker's queued root
tasks that have not started stay within `PIPELINE_BYTES` per thread (`fits_bytes`), so
short tasks that each make a large block do not pile up blocks before their dependents
consume them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from .records import TaskRecord, WorkerRecord

#: Assumed duration of a task whose function prefix has never finished.
UNKNOWN_DURATION = 0.5
#: Assumed network bandwidth for dependency transfers, bytes per second.
BANDWIDTH = 100e6
#: How much queued work (seconds per thread) keeps a worker busy between round trips.
PIPELINE_SECONDS = 0.05
#: Upper bound on extra queued root tasks per thread, however short they are.
MAX_EXTRA_PER_THREAD = 256
#: Budget, per thread, for the expected output bytes of the root tasks a worker holds
#: queued and unstarted beyond the one per thread it may always hold (`fits_bytes`).
#: Pipelining only has to hide the scheduler round trip (under a millisecond on one
#: host): one queued task per thread does, whatever its size (dask's default worker
#: saturation, 1.1, gives a single-thread worker the same), and so does any 2 MiB of
#: queued output, about a millisecond of writing at memory bandwidth. More queued
#: outputs buy no throughput, only memory held before their dependents run: the
#: ``array_x_plus_xT`` benchmark row (1.9 MiB blocks made in ~3 ms each) held ~20 of
#: them per worker under `PIPELINE_SECONDS` alone and peaked 10-20% above dask. 2 MiB
#: is 1% of a 200 MB memory limit; outputs under 8 KiB reach the count bound
#: `MAX_EXTRA_PER_THREAD` first.
PIPELINE_BYTES = 2 * 2**20
#: How many idle workers are considered besides those holding a task's dependencies.
IDLE_CANDIDATES = 16
#: An estimate this many times larger or smaller than the one tasks were booked with
#: has the scheduler book its processing tasks again (`DurationEstimates.stale`).
REBOOK_FACTOR = 2.0
#: Prefixes whose durations are kept; the oldest is forgotten beyond this (user-made keys
#: may give every task its own prefix).
PREFIXES_KEPT = 10_000


class DurationEstimates:
    """Exponentially weighted task duration and output size per key prefix.

    Tasks are booked on their worker with the estimate of the moment (`get`). When a
    prefix's estimate moves more than `REBOOK_FACTOR` away from the one it had when it
    was last booked (its first observation replacing `UNKNOWN_DURATION`, or durations
    that changed), the prefix is *stale* until `take_stale` hands it to the scheduler,
    which books its processing tasks again.

    Output sizes (`output_bytes`) are learnt from the same results, for the bytes bound
    on pipelined root tasks (`PIPELINE_BYTES`); tasks are booked with the size of the
    moment and never booked again (an unknown size counts as 0 bytes: a prefix with no
    result yet also has the `UNKNOWN_DURATION`, which gives no task beyond free threads).
    """

    __slots__ = ("_booked", "_by_prefix", "_stale", "sizes")

    def __init__(self) -> None:
        self._by_prefix: dict[str, float] = {}
        #: expected output bytes per prefix, weighted as the durations (in integers)
        self.sizes: dict[str, int] = {}
        #: estimate of each prefix when its tasks were last booked (absent: the default)
        self._booked: dict[str, float] = {}
        self._stale: set[str] = set()

    def get(self, prefix: str) -> float:
        return self._by_prefix.get(prefix, UNKNOWN_DURATION)

    def output_bytes(self, prefix: str) -> int:
        """Expected output bytes of a task of `prefix` (0 while none finished)."""
        return self.sizes.get(prefix, 0)

    def observe(self, prefix: str, seconds: float, nbytes: int | None = None) -> None:
        """A task of `prefix` ran `seconds` and, when given, made `nbytes` of output."""
        seconds = max(seconds, 0.0)
        by_prefix = self._by_prefix
        old = by_prefix.get(prefix)
        if old is None:
            if len(by_prefix) >= PREFIXES_KEPT:
                forgotten = next(iter(by_prefix))
                del by_prefix[forgotten]
                self._booked.pop(forgotten, None)
                self.sizes.pop(forgotten, None)
            new = by_prefix[prefix] = seconds
        else:
            new = by_prefix[prefix] = 0.5 * old + 0.5 * seconds
        if nbytes is not None:
            nbytes = max(nbytes, 0)
            sizes = self.sizes
            size = sizes.get(prefix)
            sizes[prefix] = nbytes if size is None else (size + nbytes) // 2
        booked = self._booked.get(prefix, UNKNOWN_DURATION)
        if new * REBOOK_FACTOR < booked or new > booked * REBOOK_FACTOR:
            self._stale.add(prefix)

    @property
    def stale(self) -> bool:
        """Whether some prefix's estimate moved far from its booked one."""
        return bool(self._stale)

    def take_stale(self) -> set[str]:
        """The stale prefixes, now counted as booked at their current estimates."""
        stale, self._stale = self._stale, set()
        for prefix in stale:
            if prefix in self._by_prefix:
                self._booked[prefix] = self._by_prefix[prefix]
        return stale

    def known(self, prefix: str) -> bool:
        return prefix in self._by_prefix


def remaining(estimate: float, elapsed: float) -> float:
    """Expected seconds left of a task estimated at `estimate` that ran `elapsed` so far.

    A task that outlived its estimate is expected to run about as long again: the
    estimate was wrong, and the time it has run is the best guess of its size.
    """
    return estimate - elapsed if elapsed < estimate else elapsed


def backlog(ws: WorkerRecord, now: float) -> float:
    """Expected seconds of work `ws` has before it is free: queued plus remaining running.

    `ws.occupancy` sums the estimates of every processing task; the running ones (at
    most one per thread, `WorkerRecord.running`) count their `remaining` time instead.
    Costs O(threads).
    """
    running = ws.running
    total = ws.occupancy
    if not running:
        return total
    processing = ws.processing
    for ts, started in running.items():  # `remaining` inlined: this is placement's hot loop
        estimate = processing[ts]
        elapsed = now - started
        total += -elapsed if elapsed < estimate else elapsed - estimate
    return total if total > 0.0 else 0.0


def offer_limits(ws: WorkerRecord, now: float) -> list[float]:
    """What `ws` may be offered now: [free threads, seconds under the pipelining window,
    tasks under the count bound]; it has room while the first is positive, or both
    others are (`has_room`) and the task offered `fits_bytes`."""
    n = len(ws.processing)
    return [
        ws.nthreads - n,
        PIPELINE_SECONDS * ws.nthreads - backlog(ws, now),
        ws.nthreads * (1 + MAX_EXTRA_PER_THREAD) - n,
    ]


def has_room(ws: WorkerRecord, now: float) -> bool:
    """Whether `ws` may be offered one more queued root task now.

    Yes while it has a free thread; otherwise while its backlog per thread is under
    `PIPELINE_SECONDS`, it holds fewer than `MAX_EXTRA_PER_THREAD` queued tasks per
    thread (the bound for tasks so short their estimates are mostly noise) and it holds
    fewer than one queued task per thread or the expected outputs of its unstarted root
    tasks are within `PIPELINE_BYTES` per thread. A task offered beyond free threads
    must then also `fits_bytes`.
    """
    n = len(ws.processing)
    if n < ws.nthreads:
        return True
    if n >= ws.nthreads * (1 + MAX_EXTRA_PER_THREAD):
        return False
    if not fits_bytes(ws, 0):
        return False
    return backlog(ws, now) < PIPELINE_SECONDS * ws.nthreads


def fits_bytes(ws: WorkerRecord, nbytes: int) -> bool:
    """Whether a root task expected to make `nbytes` may queue on `ws` beyond its free
    threads: while it holds fewer than one queued task per thread, whatever their size;
    beyond that, while the expected outputs of its unstarted root tasks stay within
    `PIPELINE_BYTES` per thread with it."""
    nthreads = ws.nthreads
    return (
        len(ws.processing) < 2 * nthreads
        or ws.unstarted_root_bytes + nbytes <= PIPELINE_BYTES * nthreads
    )


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
    now: float,
    avoid: Collection[WorkerRecord] = (),
) -> WorkerRecord | None:
    """The best worker for a ready task at time `now`, or None if no worker may run it.

    Workers in `avoid` (stalled ones) are chosen only when no other may run the task.
    Costs O(dependencies x replicas + candidates x threads): the bytes each candidate
    already holds are summed once, not once per candidate.
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
    if avoid:
        kept = [ws for ws in candidates if ws not in avoid]
        if not kept and constrained is None:
            kept = [ws for ws in workers.values() if ws not in avoid]
        candidates = kept or candidates

    def cost(ws: WorkerRecord) -> tuple[float, int]:
        # `backlog` inlined: this runs for every candidate of every placed task.
        load = ws.occupancy
        running = ws.running
        if running:
            processing = ws.processing
            for task, started in running.items():
                estimate = processing[task]
                elapsed = now - started
                load += -elapsed if elapsed < estimate else elapsed - estimate
            if load < 0.0:
                load = 0.0
        return load / ws.nthreads + (total - held.get(ws, 0)) / BANDWIDTH, len(ws.processing)

    return min(candidates, key=cost)
