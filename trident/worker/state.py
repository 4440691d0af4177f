"""`WorkerState`: one worker's logic as a sans-IO state machine.

Events come in as method calls: messages from the scheduler (`handle_scheduler_message`),
outcomes from the executor (`task_finished`, `task_failed`, `task_skipped`) and from
dependency fetches (`fetch_done`, `fetch_failed`). What to do comes out of `flush()`:
messages for the scheduler and `Instruction`s for the actor (execute a task, fetch from
a peer, interrupt a running task). The state also owns `data`, the key -> value map the
executor reads dependencies from.

Task kinds on a worker: *compute* tasks the scheduler assigned (kept in memory until the
scheduler frees them) and *data* tasks, dependencies fetched from peers (kept only while
a local task needs them).

States: ``waiting`` (for dependencies) -> ``ready`` -> ``executing`` -> ``memory``;
dependencies go ``fetch`` -> ``flight`` -> ``memory``.

Every execution has a run id. A run that is cancelled or misses its deadline is
*abandoned*: the task is forgotten (a new assignment of the key starts afresh) while the
run keeps its slot until its thread returns, and its outcome is then discarded.

A run may *secede* (`secede`, or a task waiting for futures): it gives its slot up and
goes on outside the count, so another task starts. It *rejoins* by asking for a slot
back (`rejoin`); rejoining runs get slots before any new task starts (`Rejoin`). A run
that rejoins after being abandoned holds its slot until it returns, as any other.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict, deque
from collections.abc import Callable, MutableMapping
from typing import Any

import attrs

from ..protocol import messages as m
from ..protocol.serialize import Serialized

WAITING = "waiting"
READY = "ready"
EXECUTING = "executing"
MEMORY = "memory"
FETCH = "fetch"
FLIGHT = "flight"

#: Tasks shorter than this (on average) are handed to the executor a few at a time so
#: threads never wait for the event loop between them.
SHORT_TASK_SECONDS = 0.002
#: How many tasks per thread may wait in the executor's queue when tasks are short.
PREFETCH_PER_THREAD = 8
#: Concurrent fetches from one peer.
FETCHES_PER_PEER = 2


class WorkerTask:
    """One key on this worker."""

    __slots__ = (
        "actor",
        "args",
        "cancelled",
        "dependencies",
        "dependents",
        "function",
        "inline_result",
        "is_compute",
        "key",
        "nbytes",
        "priority",
        "resources",
        "restarts",
        "run_id",
        "state",
        "timeout",
        "tried",
        "waiting_for",
        "who_has",
    )

    def __init__(self, key: str, *, is_compute: bool):
        self.key = key
        self.is_compute = is_compute
        self.state = WAITING
        self.function = ""
        self.args: Serialized | None = None
        self.priority: tuple[int, ...] = ()
        self.inline_result = False
        self.resources: dict[str, float] | None = None
        self.dependencies: list[WorkerTask] = []
        self.dependents: set[WorkerTask] = set()
        self.waiting_for: set[WorkerTask] = set()
        self.who_has: list[str] = []
        self.tried: set[str] = set()
        self.cancelled = False
        self.nbytes = 0
        self.run_id = 0
        self.timeout: float | None = None
        self.actor: m.ActorOptions | None = None
        self.restarts = 0

    def __lt__(self, other: WorkerTask) -> bool:
        return self.priority < other.priority

    def __repr__(self) -> str:
        return f"<WorkerTask {self.key!r} {self.state}>"


@attrs.frozen
class Execute:
    """Start run `run_id` of task `key` (its function, arguments and inputs are in the state)."""

    key: str
    run_id: int


@attrs.frozen
class Fetch:
    """Get the data of `keys` from the worker at `peer`."""

    peer: str
    keys: list[str]


@attrs.frozen
class Interrupt:
    """Abandon run `run_id`: async tasks are cancelled, a sync result is discarded."""

    key: str
    run_id: int


@attrs.frozen
class ForgetActor:
    """The actor hosted under `key` is released: stop it."""

    key: str


@attrs.frozen
class Rejoin:
    """The seceded run `run_id` holds a slot again: let it go on."""

    run_id: int


Instruction = Execute | Fetch | Interrupt | ForgetActor | Rejoin


class WorkerState:
    """Tasks, data and execution slots of one worker.

    `data` is where results are stored: a dict by default, a `SpillBuffer` for workers
    with a memory limit. While `paused` (memory pressure) no new task starts.
    """

    def __init__(
        self,
        address: str,
        nthreads: int,
        resources: dict[str, float] | None = None,
        data: MutableMapping[str, Any] | None = None,
    ):
        self.address = address
        self.nthreads = max(1, nthreads)
        self.tasks: dict[str, WorkerTask] = {}
        self.data: MutableMapping[str, Any] = {} if data is None else data
        self.paused = False
        self.functions: set[str] = set()
        #: run id -> task, for every run that holds a slot (abandoned runs included)
        self.executing: dict[int, WorkerTask] = {}
        #: run id -> task, for runs that gave their slot up (`secede`)
        self.seceded: dict[int, WorkerTask] = {}
        #: seceded runs waiting for a slot, in the order they asked
        self._rejoining: deque[int] = deque()
        self._run_ids = itertools.count(1)
        self.resources_total = dict(resources or {})
        self.resources_free = dict(resources or {})
        self.mean_duration = 0.5
        self._ready: list[WorkerTask] = []
        self._constrained: list[WorkerTask] = []
        self._fetch_queue: dict[WorkerTask, None] = {}
        self._fetches_in_flight: dict[str, int] = defaultdict(int)
        self._to_scheduler: list[Any] = []
        self._instructions: list[Instruction] = []
        self._scheduler_handlers: dict[type, Callable[[Any], None]] = {
            m.RunTask: self._on_run_task,
            m.DefineFunction: self._on_define_function,
            m.ForgetFunctions: self._on_forget_functions,
            m.FreeKeys: self._on_free_keys,
            m.CancelTask: self._on_cancel_task,
            m.RecallTasks: self._on_recall_tasks,
            m.Heartbeat: _ignore,
        }

    # --- output -------------------------------------------------------------------

    def flush(self) -> tuple[list[Any], list[Instruction]]:
        """Start whatever can start now; return (messages for the scheduler, instructions)."""
        self._start_fetches()
        self._start_ready()
        out, self._to_scheduler = self._to_scheduler, []
        instructions, self._instructions = self._instructions, []
        return out, instructions

    # --- scheduler messages -----------------------------------------------------------

    def handle_scheduler_message(self, message: Any) -> None:
        handler = self._scheduler_handlers.get(type(message))
        if handler is None:
            raise TypeError(f"the scheduler may not send {type(message).__name__} to a worker")
        handler(message)

    def _on_define_function(self, msg: m.DefineFunction) -> None:
        self.functions.add(msg.token)

    def _on_forget_functions(self, msg: m.ForgetFunctions) -> None:
        self.functions.difference_update(msg.tokens)

    def _on_run_task(self, msg: m.RunTask) -> None:
        ts = self.tasks.get(msg.key)
        if ts is not None:
            if ts.state == MEMORY:
                ts.is_compute = True
                self._to_scheduler.append(m.TaskFinished(ts.key, ts.nbytes, "", 0.0, 0.0, None))
                return
            if ts.is_compute:
                return  # duplicate assignment
            # We were fetching a key the scheduler now wants computed here (its data was
            # lost): hand the tasks that waited for it back, then compute it afresh.
            self._report_missing(ts)
        ts = WorkerTask(msg.key, is_compute=True)
        ts.function = msg.function
        ts.args = msg.args
        ts.priority = tuple(msg.priority)
        ts.inline_result = msg.inline_result
        ts.resources = msg.resources or None
        ts.timeout = msg.timeout
        ts.actor = msg.actor
        ts.restarts = msg.restarts
        self.tasks[msg.key] = ts
        for dep_key, holders in msg.who_has.items():
            dep = self.tasks.get(dep_key)
            if dep is None:
                dep = WorkerTask(dep_key, is_compute=False)
                dep.state = FETCH
                self.tasks[dep_key] = dep
                self._fetch_queue[dep] = None
            if dep.state in (FETCH, FLIGHT):
                for holder in holders:
                    if holder not in dep.who_has and holder != self.address:
                        dep.who_has.append(holder)
            ts.dependencies.append(dep)
            dep.dependents.add(ts)
            if dep.state != MEMORY:
                ts.waiting_for.add(dep)
                if dep.state == FETCH and not dep.who_has:
                    self._report_missing(dep)
                    return
        if not ts.waiting_for:
            self._make_ready(ts)

    def _on_free_keys(self, msg: m.FreeKeys) -> None:
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is None:
                continue
            if ts.state == MEMORY and ts.dependents:
                ts.is_compute = False  # local tasks still read it; dropped after them
            elif ts.state == EXECUTING:
                self._abandon(ts)
            else:
                self._drop(ts)

    def _on_cancel_task(self, msg: m.CancelTask) -> None:
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is None or not ts.is_compute:
                continue
            if ts.state == EXECUTING:
                self._abandon(ts)
            elif ts.state == MEMORY and ts.dependents:
                ts.is_compute = False
            else:
                self._drop(ts)

    def _on_recall_tasks(self, msg: m.RecallTasks) -> None:
        """Work stealing: drop each recalled compute task that has not started and say
        which were dropped; started, finished or unknown ones are kept as they are."""
        recalled: list[str] = []
        kept: list[str] = []
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is not None and ts.is_compute and ts.state in (WAITING, READY):
                self._drop(ts)
                recalled.append(key)
            else:
                kept.append(key)
        self._to_scheduler.append(m.TasksRecalled(msg.request, recalled, kept))

    def _abandon(self, ts: WorkerTask) -> None:
        """Give up on a running task: forget it, but let its run hold the slot until it ends."""
        ts.cancelled = True
        self._instructions.append(Interrupt(ts.key, ts.run_id))
        if self.tasks.get(ts.key) is ts:
            del self.tasks[ts.key]
        self._release_inputs(ts)

    def task_timed_out(self, run_id: int, error: m.ErrorInfo) -> None:
        """Run `run_id` passed its deadline: fail the task now and abandon the run."""
        ts = self.executing.get(run_id) or self.seceded.get(run_id)
        if ts is None or ts.cancelled or self.tasks.get(ts.key) is not ts:
            return
        self._to_scheduler.append(m.TaskFailed(ts.key, error, 0.0, 0.0))
        self._abandon(ts)

    # --- execution ------------------------------------------------------------------

    def _make_ready(self, ts: WorkerTask) -> None:
        ts.state = READY
        if ts.resources:
            self._constrained.append(ts)
            self._constrained.sort()
        else:
            heapq.heappush(self._ready, ts)

    def _slots(self) -> int:
        if self.mean_duration < SHORT_TASK_SECONDS:
            return self.nthreads * (1 + PREFETCH_PER_THREAD)
        return self.nthreads

    def _start_ready(self) -> None:
        # Rejoining runs take the next free slots, paused or not: they already hold memory
        # and finishing them frees it.
        if self._rejoining and not self._grant_rejoins():
            return
        if self.paused:
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
        ts.state = EXECUTING
        ts.run_id = next(self._run_ids)
        self.executing[ts.run_id] = ts
        self._instructions.append(Execute(ts.key, ts.run_id))

    def _finish_execution(self, run_id: int, duration: float | None) -> WorkerTask | None:
        """Free the run's slot; return its task unless the run was abandoned."""
        ts = self.executing.pop(run_id, None)
        if ts is None:
            ts = self.seceded.pop(run_id, None)
            if ts is None:
                return None
            if run_id in self._rejoining:
                self._rejoining.remove(run_id)
        if ts.resources:
            for r, n in ts.resources.items():
                self.resources_free[r] = self.resources_free.get(r, 0.0) + n
        if duration is not None:
            self.mean_duration = 0.8 * self.mean_duration + 0.2 * duration
        if ts.cancelled or self.tasks.get(ts.key) is not ts:
            return None
        return ts

    def task_finished(
        self,
        run_id: int,
        value: Any,
        *,
        nbytes: int,
        type_name: str,
        start: float,
        stop: float,
        payload: Serialized | None = None,
    ) -> bool:
        """Run `run_id` returned `value`; `payload` is its value when inlined.

        Returns False when the run had been abandoned (the value is discarded).
        """
        ts = self._finish_execution(run_id, stop - start)
        if ts is None:
            return False
        ts.state = MEMORY
        ts.nbytes = nbytes
        self.data[ts.key] = value
        ts.args = None
        self._to_scheduler.append(m.TaskFinished(ts.key, nbytes, type_name, start, stop, payload))
        self._release_inputs(ts)
        self._inputs_arrived(ts)
        return True

    def task_failed(self, run_id: int, error: m.ErrorInfo, *, start: float, stop: float) -> None:
        """Run `run_id` raised: report it and forget the task."""
        ts = self._finish_execution(run_id, stop - start)
        if ts is None:
            return
        self._to_scheduler.append(m.TaskFailed(ts.key, error, start, stop))
        self._drop(ts)

    def task_skipped(self, run_id: int) -> None:
        """Run `run_id` did not run (it was cancelled before it started)."""
        self._finish_execution(run_id, None)

    def task_rescheduled(self, run_id: int) -> None:
        """Run `run_id` raised `Reschedule`: hand the task back to the scheduler."""
        ts = self._finish_execution(run_id, None)
        if ts is None:
            return
        self._to_scheduler.append(m.TaskRescheduled(ts.key))
        self._drop(ts)

    # --- secession ----------------------------------------------------------------------

    def secede(self, run_id: int) -> bool:
        """Run `run_id` gives its slot up (another task may start); False if it holds none.

        The scheduler hears of it, unless the run was abandoned.
        """
        ts = self.executing.pop(run_id, None)
        if ts is None:
            return False
        self.seceded[run_id] = ts
        if not ts.cancelled and self.tasks.get(ts.key) is ts:
            self._to_scheduler.append(m.TaskSeceded(ts.key))
        return True

    def rejoin(self, run_id: int) -> None:
        """Run `run_id` asks for a slot back; `Rejoin` says when it has one (at once when
        it did not secede)."""
        if run_id in self.seceded:
            self._rejoining.append(run_id)
        else:
            self._instructions.append(Rejoin(run_id))

    def _grant_rejoins(self) -> bool:
        """Give free slots to rejoining runs, in order; True when none is left waiting."""
        rejoining = self._rejoining
        while rejoining and len(self.executing) < self.nthreads:
            run_id = rejoining.popleft()
            ts = self.seceded.pop(run_id)
            self.executing[run_id] = ts
            self._instructions.append(Rejoin(run_id))
        return not rejoining

    # --- data movement -----------------------------------------------------------------

    def _start_fetches(self) -> None:
        if not self._fetch_queue:
            return
        by_peer: dict[str, list[str]] = defaultdict(list)
        queue = self._fetch_queue
        for ts in list(queue):
            if ts not in queue:
                continue  # dropped with a task that an input reported missing needed
            peer = next((p for p in ts.who_has if p not in ts.tried), None)
            if peer is None:
                del self._fetch_queue[ts]
                self._report_missing(ts)
                continue
            if self._fetches_in_flight[peer] >= FETCHES_PER_PEER and peer not in by_peer:
                continue
            del self._fetch_queue[ts]
            ts.state = FLIGHT
            by_peer[peer].append(ts.key)
        for peer, keys in by_peer.items():
            self._fetches_in_flight[peer] += 1
            self._instructions.append(Fetch(peer, keys))

    def fetch_done(
        self, peer: str, keys: list[str], data: dict[str, Any], nbytes: dict[str, int]
    ) -> None:
        """A fetch of `keys` from `peer` returned `data`; keys it lacked are absent."""
        self._fetch_ended(peer)
        for key, value in data.items():
            ts = self.tasks.get(key)
            if ts is None or ts.state != FLIGHT:
                continue
            ts.state = MEMORY
            ts.nbytes = nbytes.get(key, 0)
            self.data[key] = value
            self._inputs_arrived(ts)
            if not ts.dependents and not ts.is_compute:
                self._drop(ts)
        self._fetch_missed(peer, [k for k in keys if k not in data])

    def fetch_failed(self, peer: str, keys: list[str]) -> None:
        """The connection to `peer` failed while fetching `keys`."""
        self._fetch_ended(peer)
        self._fetch_missed(peer, keys)

    def _fetch_ended(self, peer: str) -> None:
        self._fetches_in_flight[peer] -= 1
        if self._fetches_in_flight[peer] <= 0:
            del self._fetches_in_flight[peer]

    def _fetch_missed(self, peer: str, keys: list[str]) -> None:
        for key in keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state != FLIGHT:
                continue
            ts.tried.add(peer)
            ts.state = FETCH
            self._fetch_queue[ts] = None

    def _report_missing(self, dep: WorkerTask) -> None:
        """No peer could give us `dep`: hand its dependents back to the scheduler."""
        for ts in list(dep.dependents):
            self._to_scheduler.append(m.MissingData(ts.key, dep.key, sorted(dep.tried)))
            self._drop(ts)
        if dep.key in self.tasks and not dep.dependents:
            self._drop(dep)

    def put_data(self, data: dict[str, Any], nbytes: dict[str, int]) -> None:
        """Data stored directly by a client (`scatter`); kept until the scheduler frees it."""
        for key, value in data.items():
            ts = self.tasks.get(key)
            if ts is None:
                ts = WorkerTask(key, is_compute=True)
                self.tasks[key] = ts
            elif ts.state not in (MEMORY,):
                self._fetch_queue.pop(ts, None)
            ts.is_compute = True
            ts.state = MEMORY
            ts.nbytes = nbytes.get(key, 0)
            self.data[key] = value
            self._inputs_arrived(ts)

    def _inputs_arrived(self, ts: WorkerTask) -> None:
        for dependent in ts.dependents:
            if dependent.state == WAITING:
                dependent.waiting_for.discard(ts)
                if not dependent.waiting_for:
                    self._make_ready(dependent)

    # --- cleanup -------------------------------------------------------------------------

    def _release_inputs(self, ts: WorkerTask) -> None:
        for dep in ts.dependencies:
            dep.dependents.discard(ts)
            if not dep.dependents and not dep.is_compute and dep.state in (MEMORY, FETCH):
                self._drop(dep)
        ts.dependencies = []

    def _drop(self, ts: WorkerTask) -> None:
        """Forget a task that is not executing, and fetched inputs only it needed."""
        if self.tasks.get(ts.key) is ts:
            del self.tasks[ts.key]
        if ts.state == MEMORY and ts.actor is not None and ts.is_compute:
            self._instructions.append(ForgetActor(ts.key))
        self.data.pop(ts.key, None)
        self._fetch_queue.pop(ts, None)
        ts.state = "forgotten"
        for dependent in list(ts.dependents):
            if dependent.state in (WAITING, READY):
                # Cannot run without this input: the scheduler must place it again.
                self._to_scheduler.append(m.MissingData(dependent.key, ts.key, []))
                self._drop(dependent)
        self._release_inputs(ts)

    def scheduler_lost(self) -> None:
        """The connection to the scheduler is gone (the worker registers again later, with
        the keys in memory): forget every task but computed results in memory. Running
        tasks are abandoned (their results discarded); what was queued for the
        scheduler is dropped, since it reruns and recomputes what it misses."""
        for ts in [ts for ts in self.tasks.values() if ts.state == EXECUTING]:
            self._abandon(ts)
        for ts in list(self.tasks.values()):
            if self.tasks.get(ts.key) is ts and not (ts.state == MEMORY and ts.is_compute):
                self._drop(ts)
        self._ready.clear()
        self._constrained.clear()
        self._fetch_queue.clear()
        self._to_scheduler.clear()

    # --- queries ---------------------------------------------------------------------------

    def load(self) -> tuple[int, int, int]:
        """(tasks executing, tasks ready to run, bytes of data held): O(tasks)."""
        ready = 0
        stored = 0
        for ts in self.tasks.values():
            if ts.state == READY:
                ready += 1
            elif ts.state == MEMORY:
                stored += ts.nbytes
        return len(self.executing), ready, stored

    def keys_in_memory(self) -> dict[str, int]:
        return {key: ts.nbytes for key, ts in self.tasks.items() if ts.state == MEMORY}

    def validate(self) -> None:
        """Check invariants between tasks, data and slots (for tests)."""
        for key, ts in self.tasks.items():
            assert ts.key == key
            assert (ts.state == MEMORY) == (key in self.data), ts
            for dep in ts.dependencies:
                assert ts in dep.dependents, (ts, dep)
            for dependent in ts.dependents:
                assert ts in dependent.dependencies, (ts, dependent)
            if ts.state == WAITING:
                assert ts.waiting_for, ts
            if ts.state == EXECUTING:
                assert (self.executing.get(ts.run_id) or self.seceded.get(ts.run_id)) is ts
            if not ts.is_compute:
                assert ts.dependents or ts.state == FLIGHT, f"{ts} is an orphan input"
        for runs in (self.executing, self.seceded):
            for run_id, ts in runs.items():
                assert ts.run_id == run_id
                assert ts.cancelled or self.tasks.get(ts.key) is ts, f"{ts} lost its run {run_id}"
        assert not self.executing.keys() & self.seceded.keys()
        assert set(self._rejoining) <= self.seceded.keys()
        assert set(self.data) <= set(self.tasks)


def _ignore(msg: Any) -> None:
    """Handler of messages that only show the scheduler is alive."""
