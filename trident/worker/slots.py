"""`ExecutionSlots`: which runs hold the worker's execution slots, sans-IO.

A worker has `nthreads` slots. Ready tasks wait in priority order (those that need
abstract resources in a list of their own, started while the resources they need are
free); each start is a new *run* with a fresh run id, holding a slot until its outcome
arrives. When tasks are short (`SHORT_TASK_SECONDS` on average) a few more than the
threads are handed to the executor, so threads never wait for the event loop between
them.

A run may *secede*: it gives its slot up and goes on outside the count (`seceded`). It
*rejoins* by asking for a slot back; rejoining runs get free slots, in the order they
asked, before any new task starts, even while the worker is paused. Part of
`WorkerState`, which decides what happens to the task when its run ends.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Mapping

from .instructions import Execute, Instruction, Rejoin
from .tasks import EXECUTING, READY, WorkerTask

#: Tasks shorter than this (on average) are handed to the executor a few at a time so
#: threads never wait for the event loop between them.
SHORT_TASK_SECONDS = 0.002
#: How many tasks per thread may wait in the executor's queue when tasks are short.
PREFETCH_PER_THREAD = 8


class ExecutionSlots:
    """Ready tasks, and the runs that hold (or gave up) a slot.

    Arguments:
        nthreads: how many runs may hold a slot at once.
        resources: the abstract resources the worker offers, e.g. ``{"GPU": 1}``.
        tasks: the worker's tasks by key (read only): a run whose task was forgotten or
            replaced meanwhile was abandoned.
        instruct: hands the worker an instruction (`Execute`, `Rejoin`).
    """

    def __init__(
        self,
        nthreads: int,
        resources: dict[str, float] | None,
        tasks: Mapping[str, WorkerTask],
        instruct: Callable[[Instruction], None],
    ) -> None:
        self.nthreads = nthreads
        self._tasks = tasks
        self._instruct = instruct
        #: run id -> task, for every run that holds a slot (abandoned runs included)
        self.executing: dict[int, WorkerTask] = {}
        #: run id -> task, for runs that gave their slot up (`secede`)
        self.seceded: dict[int, WorkerTask] = {}
        #: seceded runs waiting for a slot, in the order they asked
        self.rejoining: deque[int] = deque()
        self._run_ids = itertools.count(1)
        self.resources_total = dict(resources or {})
        self.resources_free = dict(resources or {})
        #: seconds a run takes, on average (recent runs weigh more)
        self.mean_duration = 0.5
        self._ready: list[WorkerTask] = []
        #: where state changes are noted (`WorkerState.watch_transitions`), or None
        self.transition_log: list[tuple[str, str, str]] | None = None
        self._constrained: list[WorkerTask] = []

    def make_ready(self, ts: WorkerTask) -> None:
        """`ts` has all its inputs: it waits for a slot."""
        if self.transition_log is not None:
            self.transition_log.append((ts.key, ts.state, READY))
        ts.state = READY
        if ts.resources:
            self._constrained.append(ts)
            self._constrained.sort()
        else:
            heapq.heappush(self._ready, ts)

    def clear_ready(self) -> None:
        """Forget every ready task (the worker lost its scheduler)."""
        self._ready.clear()
        self._constrained.clear()

    def _slots(self) -> int:
        if self.mean_duration < SHORT_TASK_SECONDS:
            return self.nthreads * (1 + PREFETCH_PER_THREAD)
        return self.nthreads

    def start_ready(self, *, paused: bool) -> None:
        """Give free slots to rejoining runs, then (unless `paused`) start ready tasks."""
        # Rejoining runs take the next free slots, paused or not: they already hold memory
        # and finishing them frees it.
        if self.rejoining and not self._grant_rejoins():
            return
        if paused:
            return
        slots = self._slots()
        if self._constrained and len(self.executing) < self.nthreads:
            for ts in list(self._constrained):
                if len(self.executing) >= self.nthreads:
                    break
                assert ts.resources is not None
                if ts.state != READY:
                    self._constrained.remove(ts)
                elif all(self.resources_free.get(r, 0.0) >= n for r, n in ts.resources.items()):
                    self._constrained.remove(ts)
                    for r, n in ts.resources.items():
                        self.resources_free[r] -= n
                    self._execute(ts)
        ready = self._ready
        while ready and len(self.executing) < slots:
            ts = heapq.heappop(ready)
            if ts.state == READY:
                self._execute(ts)

    def _execute(self, ts: WorkerTask) -> None:
        if self.transition_log is not None:
            self.transition_log.append((ts.key, ts.state, EXECUTING))
        ts.state = EXECUTING
        ts.run_id = next(self._run_ids)
        self.executing[ts.run_id] = ts
        self._instruct(Execute(ts.key, ts.run_id))

    def finish(self, run_id: int, duration: float | None) -> WorkerTask | None:
        """Free the run's slot; return its task unless the run was abandoned."""
        ts = self.executing.pop(run_id, None)
        if ts is None:
            ts = self.seceded.pop(run_id, None)
            if ts is None:
                return None
            if run_id in self.rejoining:
                self.rejoining.remove(run_id)
        if ts.resources:
            for r, n in ts.resources.items():
                self.resources_free[r] = self.resources_free.get(r, 0.0) + n
        if duration is not None:
            self.mean_duration = 0.8 * self.mean_duration + 0.2 * duration
        if ts.cancelled or self._tasks.get(ts.key) is not ts:
            return None
        return ts

    def live_run(self, run_id: int) -> WorkerTask | None:
        """The task of run `run_id` unless the run ended or was abandoned."""
        ts = self.executing.get(run_id) or self.seceded.get(run_id)
        if ts is None or ts.cancelled or self._tasks.get(ts.key) is not ts:
            return None
        return ts

    def secede(self, run_id: int) -> WorkerTask | None:
        """The run gives its slot up; returns its task, or None if it held no slot."""
        ts = self.executing.pop(run_id, None)
        if ts is None:
            return None
        self.seceded[run_id] = ts
        return ts

    def rejoin(self, run_id: int) -> None:
        """The run asks for a slot back; `Rejoin` says when it has one (at once when it
        did not secede)."""
        if run_id in self.seceded:
            self.rejoining.append(run_id)
        else:
            self._instruct(Rejoin(run_id))

    def _grant_rejoins(self) -> bool:
        """Give free slots to rejoining runs, in order; True when none is left waiting."""
        rejoining = self.rejoining
        while rejoining and len(self.executing) < self.nthreads:
            run_id = rejoining.popleft()
            ts = self.seceded.pop(run_id)
            self.executing[run_id] = ts
            self._instruct(Rejoin(run_id))
        return not rejoining
