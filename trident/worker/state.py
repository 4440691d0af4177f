"""`WorkerState`: one worker's logic as a sans-IO state machine.

Everything that happens to the worker comes in as an event through one entry,
`handle(event)` (see `trident.worker.events`): messages from the scheduler
(`FromScheduler`), outcomes from the executor (`RunFinished`, `RunFailed`, ...), from
dependency fetches (`FetchDone`, `FetchFailed`) and from the actor's own work (an actor
hosted, a file stored, memory pressure). Every event carries a stimulus id; the state
keeps a bounded log of recent events and of what they led to (`log`). What to do comes
out of `flush()`: messages for the scheduler and `Instruction`s for the actor (execute a
task, fetch from a peer, interrupt a run, host an actor, load a function, store a file,
capture output, close; see `trident.worker.instructions`). The state also owns `data`,
the key -> value map the executor reads dependencies from.

Task kinds on a worker: *compute* tasks the scheduler assigned (kept in memory until the
scheduler frees them) and *data* tasks, dependencies fetched from peers (kept only while
a local task needs them, or kept for good when the scheduler asked for a replica with
`AcquireReplicas`: those go through the same fetch queue and per-peer limits).

States: ``waiting`` (for dependencies) -> ``ready`` -> ``executing`` -> ``memory``;
dependencies go ``fetch`` -> ``flight`` -> ``memory``.

Every execution has a run id. A run that is cancelled or misses its deadline is
*abandoned*: the task is forgotten (a new assignment of the key starts afresh) while the
run keeps its slot until its thread returns, and its outcome is then discarded. A run
that built an actor is finished in two steps: its outcome asks the actor to host the
instance (`HostActor`), and the hosted actor's location (`ActorHosted`) is the result.

A run may *secede* (`secede`, or a task waiting for futures): it gives its slot up and
goes on outside the count, so another task starts. It *rejoins* by asking for a slot
back; rejoining runs get slots before any new task starts (`Rejoin`). A run that
rejoins after being abandoned holds its slot until it returns, as any other. The slots,
ready tasks and run ids are kept by `ExecutionSlots` (`trident.worker.slots`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, MutableMapping
from typing import Any

from .._eventlog import DEFAULT_LENGTH, new_log, subject
from ..protocol import messages as m
from ..protocol.serialize import Serialized
from . import events as ev
from .instructions import (
    CaptureOutput,
    Close,
    Fetch,
    ForgetActor,
    ForgetFunctions,
    HostActor,
    Instruction,
    Interrupt,
    LoadFunction,
    SetupPlugin,
    StoreFile,
    TeardownPlugin,
)
from .invariants import check_invariants
from .replicas import ReplicaAcquisitions
from .slots import ExecutionSlots
from .state_dump import describe_state
from .tasks import (
    ERROR,
    EXECUTING,
    FETCH,
    FLIGHT,
    FORGOTTEN,
    MEMORY,
    READY,
    WAITING,
    WorkerTask,
)

#: Concurrent fetches from one peer.
FETCHES_PER_PEER = 2


class WorkerState:
    """Tasks, data and execution slots of one worker.

    `data` is where results are stored: a dict by default, a `SpillBuffer` for workers
    with a memory limit. While `paused` (memory pressure) no new task starts. `log`
    keeps the last `log_length` events and flushes (see `trident._eventlog`).
    """

    def __init__(
        self,
        address: str,
        nthreads: int,
        resources: dict[str, float] | None = None,
        data: MutableMapping[str, Any] | None = None,
        *,
        log_length: int = DEFAULT_LENGTH,
    ):
        self.address = address
        self.nthreads = max(1, nthreads)
        self.tasks: dict[str, WorkerTask] = {}
        self.data: MutableMapping[str, Any] = {} if data is None else data
        #: stores a value with its known size (`SpillBuffer.put`), when `data` can
        self._put: Callable[[str, Any, int], None] | None = getattr(self.data, "put", None)
        self.paused = False
        #: the scheduler told this worker to close: its further messages are ignored
        self.closed = False
        self.functions: set[str] = set()
        #: ready tasks, and the runs that hold (or gave up) an execution slot
        self.slots = ExecutionSlots(self.nthreads, resources, self.tasks, self._instruct)
        #: run id -> task, for every run that holds a slot (abandoned runs included)
        self.executing = self.slots.executing
        #: run id -> task, for runs that gave their slot up (`secede`)
        self.seceded = self.slots.seceded
        #: seceded runs waiting for a slot, in the order they asked
        self.rejoining = self.slots.rejoining
        self.resources_total = self.slots.resources_total
        self.resources_free = self.slots.resources_free
        self._fetch_queue: dict[WorkerTask, None] = {}
        self.fetches_in_flight: dict[str, int] = defaultdict(int)
        #: bytes of task data fetched from peers since the worker started
        self.bytes_fetched = 0
        #: run id -> (start, stop) of runs whose actor is being hosted (`HostActor`)
        self._hosting: dict[int, tuple[float, float]] = {}
        self._to_scheduler: list[Any] = []
        self._instructions: list[Instruction] = []
        self.replicas = ReplicaAcquisitions(address, self.tasks, self._fetch_queue, self._report)
        #: recent events ``(stimulus id, event name, subject)`` and flushes ``(stimulus
        #: id, "flush", messages for the scheduler, instructions)``
        self.log = new_log(log_length)
        self._stimulus_id = ""
        #: ``(key, start, finish)`` of task state changes since the actor last took them,
        #: in dask's state names; None (nothing noted) unless a plugin watches them
        #: (`watch_transitions`)
        self.transition_log: list[tuple[str, str, str]] | None = None
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.RunFinished: self._on_run_finished,
            ev.RunFailed: self._on_run_failed,
            ev.RunSkipped: self._on_run_skipped,
            ev.RunRescheduled: self._on_run_rescheduled,
            ev.RunTimedOut: self._on_run_timed_out,
            ev.ActorHosted: self._on_actor_hosted,
            ev.SecedeRequested: self._on_secede,
            ev.RejoinRequested: self._on_rejoin,
            ev.FetchDone: self._on_fetch_done,
            ev.FetchFailed: self._on_fetch_failed,
            ev.DataPut: self._on_data_put,
            ev.FileStoreDone: self._on_file_stored,
            ev.PluginHookDone: self._on_plugin_hook_done,
            ev.PauseChanged: self._on_pause_changed,
            ev.SchedulerLost: self._on_scheduler_lost,
        }
        self._scheduler_handlers: dict[type, Callable[[Any], None]] = {
            m.RunTask: self._on_run_task,
            m.DefineFunction: self._on_define_function,
            m.ForgetFunctions: self._on_forget_functions,
            m.FreeKeys: self._on_free_keys,
            m.CancelTask: self._on_cancel_task,
            m.AcquireReplicas: self.replicas.start,
            m.StoreFile: self._on_store_file,
            m.SetupPlugin: self._on_setup_plugin,
            m.TeardownPlugin: self._on_teardown_plugin,
            m.CaptureOutput: self._on_capture_output,
            m.CloseWorker: self._on_close_worker,
            m.DumpWorkerState: self._on_dump,
            m.RecallTasks: self._on_recall_tasks,
            m.Heartbeat: _ignore,
        }

    @property
    def mean_duration(self) -> float:
        """Seconds a run takes, on average (recent runs weigh more)."""
        return self.slots.mean_duration

    @mean_duration.setter
    def mean_duration(self, seconds: float) -> None:
        self.slots.mean_duration = seconds

    def watch_transitions(self, on: bool) -> None:
        """Start (or stop) noting task state changes in `transition_log`."""
        if on and self.transition_log is None:
            self.transition_log = []
        elif not on:
            self.transition_log = None
        self.slots.transition_log = self.transition_log

    def _note(self, key: str, start: str, finish: str) -> None:
        if self.transition_log is not None:
            self.transition_log.append((key, start, finish))

    # --- the one entry ----------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        """Take in one event (see `trident.worker.events`); `flush` says what follows.

        Raises `TypeError` for an object that is no event, or a message the scheduler
        may not send to a worker. Never blocks.
        """
        kind = type(event)
        if kind is ev.FromScheduler:
            message = event.message  # type: ignore[union-attr]
            handler = self._scheduler_handlers.get(type(message))
            if handler is None:
                raise TypeError(f"the scheduler may not send {type(message).__name__} to a worker")
            self._stimulus_id = event.stimulus_id
            self.log.append((event.stimulus_id, type(message).__name__, subject(message)))
            if not self.closed:
                handler(message)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            raise TypeError(f"{kind.__name__} is no worker event")
        self._stimulus_id = event.stimulus_id
        self.log.append((event.stimulus_id, kind.__name__, subject(event)))
        handler(event)

    # --- output -------------------------------------------------------------------

    def _report(self, message: Any) -> None:
        self._to_scheduler.append(message)

    def _instruct(self, instruction: Instruction) -> None:
        self._instructions.append(instruction)

    def flush(self) -> tuple[list[Any], list[Instruction]]:
        """Start whatever can start now; return (messages for the scheduler, instructions).

        A flush that returns anything is logged under the latest event's stimulus id,
        with how many messages and instructions it returned.
        """
        self._start_fetches()
        self.slots.start_ready(paused=self.paused)
        out, self._to_scheduler = self._to_scheduler, []
        instructions, self._instructions = self._instructions, []
        if out or instructions:
            self.log.append((self._stimulus_id, "flush", len(out), len(instructions)))
        return out, instructions

    # --- scheduler messages -----------------------------------------------------------

    def _on_define_function(self, msg: m.DefineFunction) -> None:
        self.functions.add(msg.token)
        self._instructions.append(LoadFunction(msg.token, msg.function))

    def _on_store_file(self, msg: m.StoreFile) -> None:
        self._instructions.append(StoreFile(msg.upload, msg.filename, msg.data, msg.load))

    def _on_file_stored(self, event: ev.FileStoreDone) -> None:
        if event.upload:  # 0: sent to a worker that joined later, nobody waits for it
            self._to_scheduler.append(m.FileStored(event.upload, event.error))

    def _on_setup_plugin(self, msg: m.SetupPlugin) -> None:
        self._instructions.append(SetupPlugin(msg.request, msg.name, msg.plugin))

    def _on_teardown_plugin(self, msg: m.TeardownPlugin) -> None:
        self._instructions.append(TeardownPlugin(msg.request, msg.name))

    def _on_plugin_hook_done(self, event: ev.PluginHookDone) -> None:
        if event.request:  # 0: sent to a worker that joined later, nobody waits for it
            self._to_scheduler.append(m.PluginDone(event.request, event.error))

    def _on_capture_output(self, msg: m.CaptureOutput) -> None:
        self._instructions.append(CaptureOutput(msg.enabled))

    def _on_close_worker(self, msg: m.CloseWorker) -> None:
        self.closed = True
        self._instructions.append(Close(msg.reason))

    def _on_dump(self, msg: m.DumpWorkerState) -> None:
        self._to_scheduler.append(m.WorkerStateDumped(msg.dump, describe_state(self, msg.exclude)))

    def _on_pause_changed(self, event: ev.PauseChanged) -> None:
        self.paused = event.paused

    def _on_forget_functions(self, msg: m.ForgetFunctions) -> None:
        self.functions.difference_update(msg.tokens)
        self._instructions.append(ForgetFunctions(list(msg.tokens)))

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
        if self.transition_log is not None:
            self.transition_log.append((msg.key, "released", WAITING))
        for dep_key, holders in msg.who_has.items():
            dep = self.tasks.get(dep_key)
            if dep is None:
                dep = WorkerTask(dep_key, is_compute=False)
                dep.state = FETCH
                self.tasks[dep_key] = dep
                self._note(dep_key, "released", FETCH)
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
        self._note(ts.key, ts.state, "cancelled")
        self._instructions.append(Interrupt(ts.key, ts.run_id))
        if self.tasks.get(ts.key) is ts:
            del self.tasks[ts.key]
        self._release_inputs(ts)

    def _on_run_timed_out(self, event: ev.RunTimedOut) -> None:
        """The run passed its deadline: fail the task now and abandon the run."""
        ts = self._live_run(event.run_id)
        if ts is None:
            return
        self._to_scheduler.append(m.TaskFailed(ts.key, event.error, 0.0, 0.0))
        self._abandon(ts)

    # --- execution ------------------------------------------------------------------

    def _make_ready(self, ts: WorkerTask) -> None:
        self.slots.make_ready(ts)

    def _finish_execution(self, run_id: int, duration: float | None) -> WorkerTask | None:
        """Free the run's slot; return its task unless the run was abandoned."""
        return self.slots.finish(run_id, duration)

    def _live_run(self, run_id: int) -> WorkerTask | None:
        """The task of run `run_id` unless the run ended or was abandoned."""
        return self.slots.live_run(run_id)

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        """The run returned; an abandoned run's value is discarded. A run that built an
        actor keeps its slot until the actor is hosted (`HostActor`, `ActorHosted`)."""
        run_id = event.run_id
        ts = self.executing.get(run_id) or self.seceded.get(run_id)
        if ts is not None and ts.actor is not None and self._live_run(run_id) is ts:
            self._hosting[run_id] = (event.start, event.stop)
            self._instructions.append(
                HostActor(ts.key, run_id, event.value, ts.actor, ts.restarts, ts.inline_result)
            )
            return
        self._finish(
            run_id,
            event.value,
            event.nbytes,
            event.type_name,
            event.start,
            event.stop,
            event.payload,
        )

    def _on_actor_hosted(self, event: ev.ActorHosted) -> None:
        """The actor of a finished run is hosted: its location is the task's result."""
        ts = self.executing.get(event.run_id) or self.seceded.get(event.run_id)
        key = ts.key if ts is not None else None
        start, stop = self._hosting.pop(event.run_id, (0.0, 0.0))
        hosted = self._finish(
            event.run_id, event.location, event.nbytes, "Actor", start, stop, event.payload
        )
        if not hosted and key is not None and key not in self.tasks:
            self._instructions.append(ForgetActor(key))  # abandoned meanwhile

    def _finish(
        self,
        run_id: int,
        value: Any,
        nbytes: int,
        type_name: str,
        start: float,
        stop: float,
        payload: Serialized | None,
    ) -> bool:
        """Store the run's value and report it; False when the run had been abandoned."""
        ts = self._finish_execution(run_id, stop - start)
        if ts is None:
            return False
        if self.transition_log is not None:
            self.transition_log.append((ts.key, ts.state, MEMORY))
        ts.state = MEMORY
        ts.nbytes = nbytes
        self._store(ts.key, value, nbytes)
        ts.args = None
        self._to_scheduler.append(m.TaskFinished(ts.key, nbytes, type_name, start, stop, payload))
        self._release_inputs(ts)
        self._inputs_arrived(ts)
        return True

    def _on_run_failed(self, event: ev.RunFailed) -> None:
        """The run raised: report it and forget the task."""
        ts = self._finish_execution(event.run_id, event.stop - event.start)
        if ts is None:
            return
        self._to_scheduler.append(m.TaskFailed(ts.key, event.error, event.start, event.stop))
        self._note(ts.key, ts.state, ERROR)
        ts.state = ERROR
        self._drop(ts)

    def _on_run_skipped(self, event: ev.RunSkipped) -> None:
        self._finish_execution(event.run_id, None)

    def _on_run_rescheduled(self, event: ev.RunRescheduled) -> None:
        """The run raised `Reschedule`: hand the task back to the scheduler."""
        ts = self._finish_execution(event.run_id, None)
        if ts is None:
            return
        self._to_scheduler.append(m.TaskRescheduled(ts.key))
        self._drop(ts)

    # --- secession ----------------------------------------------------------------------

    def _on_secede(self, event: ev.SecedeRequested) -> None:
        """The run gives its slot up (another task may start); nothing happens if it holds
        none. The scheduler hears of it, unless the run was abandoned."""
        ts = self.slots.secede(event.run_id)
        if ts is None:
            return
        if not ts.cancelled and self.tasks.get(ts.key) is ts:
            self._to_scheduler.append(m.TaskSeceded(ts.key))

    def _on_rejoin(self, event: ev.RejoinRequested) -> None:
        """The run asks for a slot back; `Rejoin` says when it has one (at once when it
        did not secede)."""
        self.slots.rejoin(event.run_id)

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
            if self.fetches_in_flight[peer] >= FETCHES_PER_PEER and peer not in by_peer:
                continue
            del self._fetch_queue[ts]
            self._note(ts.key, ts.state, FLIGHT)
            ts.state = FLIGHT
            by_peer[peer].append(ts.key)
        for peer, keys in by_peer.items():
            self.fetches_in_flight[peer] += 1
            self._instructions.append(Fetch(peer, keys))

    def _store(self, key: str, value: Any, nbytes: int) -> None:
        """Keep `value` in `data`, passing on its size when known (positive)."""
        if self._put is not None and nbytes > 0:
            self._put(key, value, nbytes)
        else:
            self.data[key] = value

    def _on_fetch_done(self, event: ev.FetchDone) -> None:
        """The fetch returned data; the keys the peer lacked are tried elsewhere."""
        peer, data, nbytes = event.peer, event.data, event.nbytes
        self._fetch_ended(peer)
        for key, value in data.items():
            ts = self.tasks.get(key)
            if ts is None or ts.state != FLIGHT:
                continue
            self._note(key, FLIGHT, MEMORY)
            ts.state = MEMORY
            ts.nbytes = nbytes.get(key, 0)
            self.bytes_fetched += ts.nbytes
            self._store(key, value, ts.nbytes)
            if ts.acquiring is not None:
                self.replicas.acquired(ts, ts.nbytes)
            self._inputs_arrived(ts)
            if not ts.dependents and not ts.is_compute:
                self._drop(ts)
        self._fetch_missed(peer, [k for k in event.keys if k not in data])

    def _on_fetch_failed(self, event: ev.FetchFailed) -> None:
        self._fetch_ended(event.peer)
        self._fetch_missed(event.peer, event.keys)

    def _fetch_ended(self, peer: str) -> None:
        self.fetches_in_flight[peer] -= 1
        if self.fetches_in_flight[peer] <= 0:
            del self.fetches_in_flight[peer]

    def _fetch_missed(self, peer: str, keys: list[str]) -> None:
        for key in keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state != FLIGHT:
                continue
            ts.tried.add(peer)
            self._note(key, FLIGHT, FETCH)
            ts.state = FETCH
            self._fetch_queue[ts] = None

    def _report_missing(self, dep: WorkerTask) -> None:
        """No peer could give us `dep`: hand its dependents back to the scheduler."""
        if dep.acquiring is not None:
            self.replicas.acquired(dep, None)
        for ts in list(dep.dependents):
            self._to_scheduler.append(m.MissingData(ts.key, dep.key, sorted(dep.tried)))
            self._drop(ts)
        if dep.key in self.tasks and not dep.dependents:
            self._drop(dep)

    def _on_data_put(self, event: ev.DataPut) -> None:
        """Data stored directly by a client (`scatter`); kept until the scheduler frees it."""
        for key, value in event.data.items():
            ts = self.tasks.get(key)
            if ts is None:
                ts = WorkerTask(key, is_compute=True)
                self.tasks[key] = ts
            elif ts.state not in (MEMORY,):
                self._fetch_queue.pop(ts, None)
            ts.is_compute = True
            if ts.state != MEMORY:
                self._note(key, ts.state, MEMORY)
            ts.state = MEMORY
            ts.nbytes = event.nbytes.get(key, 0)
            self._store(key, value, ts.nbytes)
            if ts.acquiring is not None:
                self.replicas.acquired(ts, ts.nbytes)
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
            if (
                not dep.dependents
                and not dep.is_compute
                and dep.acquiring is None
                and dep.state in (MEMORY, FETCH)
            ):
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
        if ts.acquiring is not None:
            self.replicas.acquired(ts, None)
        if self.transition_log is not None and ts.state != FORGOTTEN:
            self.transition_log.append((ts.key, ts.state, "released"))
        ts.state = FORGOTTEN
        for dependent in list(ts.dependents):
            if dependent.state in (WAITING, READY):
                # Cannot run without this input: the scheduler must place it again.
                self._to_scheduler.append(m.MissingData(dependent.key, ts.key, []))
                self._drop(dependent)
        self._release_inputs(ts)

    def _on_scheduler_lost(self, event: ev.SchedulerLost) -> None:
        """The connection to the scheduler is gone (the worker registers again later, with
        the keys in memory): forget every task but computed results in memory. Running
        tasks are abandoned (their results discarded); what was queued for the
        scheduler is dropped, since it reruns and recomputes what it misses."""
        for ts in [ts for ts in self.tasks.values() if ts.state == EXECUTING]:
            self._abandon(ts)
        for ts in list(self.tasks.values()):
            if self.tasks.get(ts.key) is ts and not (ts.state == MEMORY and ts.is_compute):
                self._drop(ts)
        self.slots.clear_ready()
        self._fetch_queue.clear()
        self.replicas.pending.clear()
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
        """Check invariants between tasks, data and slots (for tests); raises
        AssertionError naming the first one broken."""
        check_invariants(self)


def _ignore(msg: Any) -> None:
    """Handler of messages that only show the scheduler is alive."""
