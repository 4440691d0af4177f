"""`WorkStealing`: move queued tasks off busy workers onto idle ones, sans-IO.

A worker with a free thread and less than `PIPELINE_SECONDS` of backlog per thread (a
*thief*) takes tasks that another worker (a *victim*) holds but has not started, when
it would start them sooner. A candidate moves when the thief's backlog per thread, plus
the time to fetch the candidate's inputs the thief lacks (`BANDWIDTH`), plus
`STEAL_LATENCY`, is less than the time the candidate would still wait on the victim
(the victim's backlog per thread, less its own estimate). Candidates are taken from the
end of the victim's books (the tasks it would start last), the backlogs of both sides
are updated with every move, so moves stop once the two are level. Only victims with
more than `PIPELINE_SECONDS` of backlog per thread are considered: less drains sooner
than a steal's round trip pays off. Actors and tasks with restrictions or resources
never move.

A steal never runs a task twice with both results used, and never loses one. The
scheduler sends the victim `RecallTasks`; the victim drops each key that is still
queued (waiting for its inputs, or ready) and answers `TasksRecalled` with the keys it
dropped and the keys it kept (started, finished, or unknown to it). Until that answer
the task stays on the victim's books, so a result the victim sends first is used as
any other. Dropped keys then go to the thief (or are placed afresh when the thief left
or is retiring); kept ones stay where they are. Every request has an id, and an answer
counts only for tasks whose latest request it answers and that are still on that
victim's books: a task that left the victim meanwhile (finished, cancelled, moved by
its death) forgets its steal (`forget`), and a new assignment of the key to the victim
reaches it after the recall, so the victim never drops a task the scheduler still
counts on it.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ..protocol import messages as m
from .placement import BANDWIDTH, PIPELINE_SECONDS, backlog
from .records import PROCESSING, TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from .state import SchedulerState

#: Seconds a steal costs before the thief can start the task: the recall's round trip
#: to the victim, then the task's way to the thief.
STEAL_LATENCY = 0.002
#: How many tasks at the end of a victim's books are considered per balancing round.
CANDIDATES_PER_VICTIM = 256


class Steal:
    """One task on its way from `victim` to `thief`, asked for by recall `request`."""

    __slots__ = ("estimate", "request", "thief", "victim")

    def __init__(self, request: int, victim: WorkerRecord, thief: WorkerRecord, estimate: float):
        self.request = request
        self.victim = victim
        self.thief = thief
        self.estimate = estimate


def stealable(ts: TaskRecord) -> bool:
    """Whether `ts` may run on any worker: no actor, restrictions or resources."""
    return ts.actor is None and ts.restrictions is None and ts.resources is None


class WorkStealing:
    """Recalls in flight and the balancing rounds of one `SchedulerState`.

    `balance` is called from `flush` while `due` is set (a worker gained a free thread,
    a worker joined, the clock ticked); `on_tasks_recalled` handles the victims'
    answers. The state calls `forget` whenever a task leaves a worker's books and
    `worker_removed` when a worker leaves.
    """

    def __init__(self, state: SchedulerState):
        self._state = state
        self.in_flight: dict[TaskRecord, Steal] = {}
        #: seconds of estimated work on their way to each thief / away from each victim
        self.incoming: dict[WorkerRecord, float] = {}
        self.outgoing: dict[WorkerRecord, float] = {}
        self.due = False
        #: workers that were assigned more tasks than they have threads: the only
        #: possible victims. The state adds them as it assigns; `balance` drops those
        #: whose queues drained or that left, so a round costs nothing while no worker
        #: has unstarted tasks (the common case for latency-bound work).
        self.queued: dict[WorkerRecord, None] = {}
        #: tasks moved and recalls refused (for tests and diagnostics)
        self.moved = 0
        self.refused = 0
        self._requests = itertools.count(1)

    def handlers(self) -> dict[type, object]:
        return {m.TasksRecalled: self.on_tasks_recalled}

    # --- balancing ----------------------------------------------------------------

    def balance(self, now: float) -> None:
        """One round: recall queued tasks that idle workers would start sooner."""
        self.due = False
        state = self._state
        if not self.queued or not state.idle or len(state.workers) < 2:
            return
        candidates = []
        for ws in list(self.queued):
            if len(ws.processing) <= ws.nthreads or state.workers.get(ws.address) is not ws:
                del self.queued[ws]
            else:
                candidates.append(ws)
        if not candidates:
            return
        retiring = state.data_movement.retiring
        thieves: dict[WorkerRecord, float] = {}
        for ws in state.idle:
            if ws.address in retiring:
                continue
            load = (backlog(ws, now) + self.incoming.get(ws, 0.0)) / ws.nthreads
            if load < PIPELINE_SECONDS:
                thieves[ws] = load
        if not thieves:
            return
        victims: list[tuple[float, WorkerRecord]] = []
        for ws in candidates:  # more tasks than threads: never idle, so never a thief
            load = (backlog(ws, now) - self.outgoing.get(ws, 0.0)) / ws.nthreads
            if load > PIPELINE_SECONDS:
                victims.append((load, ws))
        victims.sort(key=lambda entry: -entry[0])
        for load, victim in victims:
            self._rob(victim, load, thieves)

    def _rob(self, victim: WorkerRecord, load: float, thieves: dict[WorkerRecord, float]) -> None:
        """Recall from `victim` (at `load` seconds per thread) what `thieves` start sooner."""
        in_flight = self.in_flight
        keys: list[str] = []
        request = 0
        scanned = 0
        processing = victim.processing
        for ts in reversed(processing):
            if scanned >= CANDIDATES_PER_VICTIM:
                break
            scanned += 1
            if ts in victim.running or ts in in_flight or not stealable(ts):
                continue
            estimate = processing[ts]
            wait = load - estimate / victim.nthreads
            thief, start = self._best_thief(ts, thieves)
            if start >= wait:
                continue
            if not request:
                request = next(self._requests)
            in_flight[ts] = Steal(request, victim, thief, estimate)
            self.outgoing[victim] = self.outgoing.get(victim, 0.0) + estimate
            self.incoming[thief] = self.incoming.get(thief, 0.0) + estimate
            keys.append(ts.key)
            load -= estimate / victim.nthreads
            thieves[thief] += estimate / thief.nthreads
        if keys:
            self._state.outbox.send(victim.address, m.RecallTasks(request, keys))

    @staticmethod
    def _best_thief(
        ts: TaskRecord, thieves: dict[WorkerRecord, float]
    ) -> tuple[WorkerRecord, float]:
        """The thief that would start `ts` first, and when (seconds from now)."""
        best: WorkerRecord | None = None
        best_start = float("inf")
        for thief, load in thieves.items():
            missing = sum(dep.nbytes for dep in ts.dependencies if thief not in dep.who_has)
            start = load + missing / BANDWIDTH + STEAL_LATENCY
            if start < best_start:
                best, best_start = thief, start
        assert best is not None
        return best, best_start

    # --- answers and departures -----------------------------------------------------

    def on_tasks_recalled(self, ws: WorkerRecord, msg: m.TasksRecalled) -> None:
        """The victim `ws` answered a recall: move what it dropped, keep what it kept."""
        state = self._state
        for key in msg.kept:
            steal = self._answered(ws, msg.request, key)
            if steal is not None:
                self.refused += 1
        for key in msg.recalled:
            steal = self._answered(ws, msg.request, key)
            if steal is not None:
                self.moved += 1
                state.move_task(state.tasks[key], steal.thief)

    def _answered(self, ws: WorkerRecord, request: int, key: str) -> Steal | None:
        """The steal of `key` that this answer settles (now forgotten), if any."""
        ts = self._state.tasks.get(key)
        if ts is None:
            return None
        steal = self.in_flight.get(ts)
        if steal is None or steal.request != request or steal.victim is not ws:
            return None
        self.forget(ts)
        return steal

    def forget(self, ts: TaskRecord) -> None:
        """`ts` left its worker's books, or its steal was answered: the steal is over."""
        steal = self.in_flight.pop(ts, None)
        if steal is None:
            return
        for side, worker in ((self.outgoing, steal.victim), (self.incoming, steal.thief)):
            left = side.get(worker, 0.0) - steal.estimate
            if left > 1e-9:
                side[worker] = left
            else:
                side.pop(worker, None)  # rounding must not leave a tiny remainder

    def worker_removed(self, ws: WorkerRecord) -> None:
        """`ws` left: its tasks are placed afresh, and nothing more goes to it."""
        for ts in [ts for ts, steal in self.in_flight.items() if steal.victim is ws]:
            self.forget(ts)
        self.queued.pop(ws, None)
        self.incoming.pop(ws, None)
        self.outgoing.pop(ws, None)
        self.due = True

    def validate(self) -> None:
        """Every steal in flight is of a task still on its victim's books."""
        for ts, steal in self.in_flight.items():
            assert ts.state == PROCESSING, (ts, steal)
            assert ts.processing_on is steal.victim, (ts, steal)
            assert ts in steal.victim.processing, ts
        for side in (self.incoming, self.outgoing):
            for amount in side.values():
                assert amount >= 0.0
        for ws in self._state.workers.values():
            if len(ws.processing) > ws.nthreads:
                assert ws in self.queued, ws
