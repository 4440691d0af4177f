"""`SchedulerState`: the scheduler's whole logic as a sans-IO state machine.

Events come in as method calls (`add_client`, `handle_client_message`,
`handle_worker_message`, `remove_worker`, ...); the messages to send come out of
`flush()` as ``{peer id: [messages]}``, where a peer id is a worker address or a client
id. Nothing here awaits, sleeps or touches a socket, so tests drive it directly and
simulations run it at scales no machine could host.

Task lifecycle (see `records` for the states)::

    released -> waiting -> (queued | no-worker) -> processing -> memory
                                                            \\-> erred

A task stays known (possibly `released`, without data) while any dependent record needs
its lineage; it is forgotten when no client wants it and no record depends on it. A
task's data is released as soon as no client wants it and no unfinished dependent needs
it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from .._eventlog import DEFAULT_LENGTH, new_log, subject
from .._exceptions import ActorDied, DependencyError, FutureLostError
from .._logbuffer import LogBuffer
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from ..protocol.serialize import Serialized
from .activity import FAILED, OK, Activity
from .coordination import CoordinationState
from .data_movement import DataMovement
from .datasets import DatasetState
from .deaths import CONNECTION_CLOSED, WorkerDeaths
from .diagnostics import Diagnostics
from .dumps import ClusterDumps
from .errors import InvalidMessage
from .holds import HOLDER_ID, KeyHolds
from .inspection import ClusterQueries
from .invariants import check_invariants
from .liveness import Liveness, LivenessSettings
from .lost_data import LostData
from .nannies import Nannies
from .output import OutputForwarding
from .placement import DurationEstimates, choose_worker, has_room, offer_limits
from .records import (
    EMPTY,
    ERRED,
    MEMORY,
    NO_WORKER,
    PROCESSING,
    QUEUED,
    RELEASED,
    WAITING,
    ClientRecord,
    TaskRecord,
    WorkerRecord,
)
from .remote_calls import RemoteCalls
from .sessions import ClientSessions
from .stalls import WorkerStalls
from .stealing import WorkStealing
from .uploads import Uploads

logger = logging.getLogger("trident.scheduler")

FIRE_AND_FORGET = "fire-and-forget"
HEARTBEAT = m.Heartbeat()
#: Task order is ``-priority * PRIORITY_SPAN + sequence``: one int, compared fast.
PRIORITY_SPAN = 2**48
#: Least seconds between two passes that book processing tasks with new estimates
#: (each pass costs O(processing tasks); `DurationEstimates.stale`).
REBOOK_INTERVAL = 0.1


class SchedulerState:
    """Tasks, workers and clients, and every transition between task states.

    Arguments:
        scheduler_id: the id sent to peers.
        allowed_failures: how often a task's workers may die before it fails.
        clock: wall-clock seconds, for heartbeat ages and error times (tests pass
            their own).
        liveness: heartbeat interval and the timeouts of silent or departed peers
            (see `tick`).
        log_length: entries kept in `log`, the recent events and flushes.
    """

    def __init__(
        self,
        scheduler_id: str = "scheduler",
        *,
        allowed_failures: int = 3,
        clock: Callable[[], float] = time.time,
        liveness: LivenessSettings | None = None,
        log_length: int = DEFAULT_LENGTH,
    ):
        self.id = scheduler_id
        self.allowed_failures = allowed_failures
        self.clock = clock
        self.tasks: dict[str, TaskRecord] = {}
        self.workers: dict[str, WorkerRecord] = {}
        self.clients: dict[str, ClientRecord] = {}
        self.functions: dict[str, Serialized] = {}
        self.durations = DurationEstimates()
        #: workers with at least one free thread, in the order they became free
        self.idle: dict[WorkerRecord, None] = {}
        self.no_worker: dict[TaskRecord, None] = {}
        #: client id -> keys that went to no-worker since the last flush (see flush)
        self._no_worker_news: defaultdict[str, list[str]] = defaultdict(list)
        self._retrying_no_worker = False
        self.transitions = 0
        #: recent events ``(stimulus id, event, peer, subject)`` and flushes ``(stimulus
        #: id, "flush", transitions since the last flush, messages sent)``;
        #: stimulus ids number the events this state took in
        self.log = new_log(log_length)
        self._stimuli = itertools.count(1)
        self._stimulus_id = 0
        self._flushed_transitions = 0
        #: recent task runs and errors, for the dashboard (O(1) per task)
        self.activity = Activity()
        #: what the scheduler serves besides its own address, e.g. ``{"dashboard": ...}``
        self.services: dict[str, str | None] = {}
        #: the scheduler's recent log records; the actor attaches it to its loggers
        self.logs = LogBuffer(self)
        self._function_refs: dict[str, int] = defaultdict(int)
        self._queue: list[TaskRecord] = []  # heap; entries whose state moved on are stale
        self._queue_dirty = False
        self._next_rebooking = 0.0
        self._sequence = itertools.count()
        self._outbox: dict[str, list[Any]] = defaultdict(list)
        self._fire_and_forget = ClientRecord(FIRE_AND_FORGET, FIRE_AND_FORGET)
        self._client_handlers: dict[type, Callable[[ClientRecord, Any], None]] = {
            m.UpdateGraph: self._on_update_graph,
            m.ReleaseKeys: self._on_release_keys,
            m.CancelKeys: self._on_cancel_keys,
            m.FireAndForget: self._on_fire_and_forget,
            m.RegisterScattered: self._on_register_scattered,
            m.WantKeys: self._on_want_keys,
            m.RestartRequest: self._on_restart,
            m.RestartWorkersRequest: self._on_restart_workers,
            m.Heartbeat: _ignore,
        }
        self._worker_handlers: dict[type, Callable[[WorkerRecord, Any], None]] = {
            m.TaskFinished: self._on_task_finished,
            m.TaskFailed: self._on_task_failed,
            m.MissingData: self._on_missing_data,
            m.KeysReleased: self._on_keys_released,
            m.WorkerHeartbeat: self._on_heartbeat,
        }
        #: when peers were last heard from, and clients that may still resume
        self.liveness = Liveness(liveness)
        #: why workers left; KilledWorker verdicts waiting for a nanny's report
        self.deaths = WorkerDeaths(self._killed)
        self.sessions = ClientSessions(self)
        self.nannies = Nannies(self.workers, self._send, self.remove_worker, self._death_reported)
        #: keys kept alive for stored values (queues, variables, datasets) and handoffs
        self.holds = KeyHolds(self)
        self.coordination = CoordinationState(self._send, self.holds)
        self.datasets = DatasetState(self._send, self.holds)
        self._client_handlers.update(self.coordination.handlers())
        self._client_handlers.update(self.datasets.handlers())
        # Cluster administration (issue 6): queries, moving data, uploads, remote calls.
        self.queries = ClusterQueries(self, self._send)
        self.output = OutputForwarding(self.tasks, self.workers, self._send)
        self.data_movement = DataMovement(self, self._send)
        self.uploads = Uploads(self.workers, self._send)
        self.remote_calls = RemoteCalls(self.workers, self.nannies, self._send, error_info_for)
        self.dumps = ClusterDumps(self, self._send)
        #: events by topic, the task stream and retries (`Client.log_event`, ...)
        self.diagnostics = Diagnostics(self, self._send)
        parts = (
            self.queries,
            self.output,
            self.data_movement,
            self.uploads,
            self.remote_calls,
            self.dumps,
            self.diagnostics,
        )
        for part in parts:
            self._client_handlers.update(part.handlers())
        self._worker_handlers.update(self.output.worker_handlers())
        self._worker_handlers[m.TaskSeceded] = self._on_task_seceded
        self._worker_handlers[m.TaskRescheduled] = self._on_task_rescheduled
        self._worker_handlers[m.ReplicasAcquired] = self.data_movement.on_replicas_acquired
        self._worker_handlers[m.WorkerRetiring] = self.data_movement.on_worker_retiring
        self._worker_handlers[m.FileStored] = self.uploads.on_file_stored
        self._worker_handlers[m.WorkerStateDumped] = self.dumps.on_worker_dumped
        #: queued tasks moving from busy workers to idle ones (issue 16)
        self.stealing = WorkStealing(self)
        self._worker_handlers[m.TasksRecalled] = self.stealing.on_tasks_recalled
        #: workers gone quiet, and unrecomputable data awaited from departed workers
        self.stalls = WorkerStalls(self)
        self.lost_data = LostData(self)

    # --- output -------------------------------------------------------------------------

    def _send(self, peer: str, message: Any) -> None:
        self._outbox[peer].append(message)

    def _send_key(self, peer: str, kind: type[m.FreeKeys] | type[m.CancelTask], key: str) -> None:
        """Send a per-key worker message, extending the previous one when it is the same kind.

        Releasing 20,000 futures then costs one message per worker, and message order
        (a free before a new run of the same key) is kept.
        """
        box = self._outbox[peer]
        if box and type(box[-1]) is kind:
            box[-1].keys.append(key)
        else:
            box.append(kind([key]))

    def _broadcast_to_clients(self, message: Any) -> None:
        for client_id in self.clients:
            self._send(client_id, message)

    def _record(self, event: str, peer: str | None, about: Any) -> None:
        """Log an event under a fresh stimulus id."""
        stimulus_id = self._stimulus_id = next(self._stimuli)
        self.log.append((stimulus_id, event, peer, about))

    def flush(self) -> dict[str, list[Any]]:
        """Finish deferred scheduling and return (and forget) the messages to send.

        A flush that sends anything or made transitions is logged under the latest
        event's stimulus id.
        """
        if self.durations.stale:
            now = self.clock()
            if now >= self._next_rebooking:
                self._next_rebooking = now + REBOOK_INTERVAL
                self._refresh_estimates()
        if self._queue_dirty:
            self._schedule_queued()
        if self.stealing.due:
            self.stealing.balance(self.clock())
        if self._no_worker_news:
            for client_id, keys in self._no_worker_news.items():
                self._send(client_id, m.KeysWithoutWorker(keys))
            self._no_worker_news.clear()
        out, self._outbox = self._outbox, defaultdict(list)
        out.pop(HOLDER_ID, None)  # the holder of stored keys is no peer
        transitions = self.transitions - self._flushed_transitions
        if out or transitions:
            self._flushed_transitions = self.transitions
            messages = sum(map(len, out.values()))
            self.log.append((self._stimulus_id, "flush", transitions, messages))
        return out

    # --- clients ------------------------------------------------------------------------

    def add_client(self, client_id: str, name: str = "") -> None:
        if client_id in self.clients:
            if not self.liveness.is_away(client_id):
                raise InvalidMessage(f"client id {client_id!r} is already connected")
            self.remove_client(client_id)  # registering afresh: the old record goes
        self._record("add-client", client_id, name)
        cs = self.clients[client_id] = ClientRecord(client_id, name)
        self.liveness.client_joined(client_id)
        self._welcome(cs)

    def _welcome(self, cs: ClientRecord) -> None:
        workers = [ws.info for ws in self.workers.values()]
        self._send(cs.client_id, m.ClientWelcome(self.id, workers))
        self._send(cs.client_id, m.SchedulerServices(self.services.get("dashboard")))

    def resume_client(self, msg: m.ResumeClient) -> None:
        """A client registered again after losing its connection (see `sessions`)."""
        self.sessions.resume(msg)

    def client_disconnected(self, client_id: str) -> None:
        """The client's connection ended without a goodbye: keep its work for the grace
        period (`LivenessSettings.client_grace`) in case it resumes."""
        self.sessions.disconnected(client_id)

    def remove_client(self, client_id: str) -> None:
        """The client left: drop everything it wanted and the functions it defined."""
        cs = self.clients.pop(client_id, None)
        if cs is None:
            return
        self._record("remove-client", client_id, None)
        self.dumps.client_removed(client_id)
        self.liveness.client_left(client_id, for_good=True)
        self._outbox.pop(client_id, None)
        self.coordination.client_removed(client_id)
        self.diagnostics.client_removed(client_id)
        self.holds.client_removed(client_id)
        self.data_movement.client_removed(client_id)
        self.uploads.client_removed(client_id)
        self.remote_calls.client_removed(client_id)
        self.output.client_left(cs)
        for ts in list(cs.wants):
            ts.who_wants.discard(cs)
            self._check_release(ts)
        cs.wants.clear()
        for token in cs.functions:
            self._unref_function(token)
        self.nannies.forget_client(client_id)

    def handle_client_message(
        self, client_id: str, message: m.ClientToScheduler | m.Common
    ) -> None:
        """Apply one message from a client. Raises `InvalidMessage` for disallowed types."""
        handler = self._client_handlers.get(type(message))
        if handler is None:
            raise InvalidMessage(f"clients may not send {type(message).__name__}")
        stimulus_id = self._stimulus_id = next(self._stimuli)
        self.log.append((stimulus_id, type(message).__name__, client_id, subject(message)))
        handler(self.clients[client_id], message)

    # --- workers ------------------------------------------------------------------------

    def add_worker(self, info: m.WorkerInfo, keys: dict[str, int] | None = None) -> None:
        """A worker joined; `keys` is data it already holds (key -> nbytes)."""
        if info.address in self.workers:
            raise InvalidMessage(f"worker {info.address} is already registered")
        self._record("add-worker", info.address, info.name)
        ws = WorkerRecord(info, self.clock())
        self.workers[ws.address] = ws
        self.idle[ws] = None
        self.liveness.worker_joined(ws.address)
        self._send(ws.address, m.WorkerWelcome(self.id))
        self.uploads.worker_added(ws.address)
        self.output.worker_added(ws.address)
        unknown = []
        for key, nbytes in (keys or {}).items():
            ts = self.tasks.get(key)
            if ts is not None and ts.state == MEMORY:
                self._add_replica(ts, ws, nbytes)
            elif ts is None or not self.lost_data.restore(ts, ws, nbytes):
                unknown.append(key)
        if unknown:
            self._send(ws.address, m.FreeKeys(unknown))
        self.lost_data.holder_gone(ws.address)  # what it came back without is lost
        self._broadcast_to_clients(m.WorkersChanged([info], []))
        self._retrying_no_worker = True  # their clients were told already
        try:
            for ts in list(self.no_worker):
                del self.no_worker[ts]
                self._compute(ts)
        finally:
            self._retrying_no_worker = False
        self._queue_dirty = True
        self.stealing.due = True

    def remove_worker(
        self,
        address: str,
        reason: str = CONNECTION_CLOSED,
        *,
        graceful: bool = False,
        await_report: bool = False,
        silent: bool = False,
    ) -> None:
        """A worker is gone: rerun what it was running, recompute what only it held.

        `graceful` (a retired worker) places its running tasks elsewhere without
        counting the removal against them (`KilledWorker`). With `await_report` (its
        connection dropped and a nanny supervises it), tasks that this death makes fail
        with `KilledWorker` wait for the nanny's report of why it died (see `deaths`).
        Data that cannot be recomputed is awaited a while (`lost_data`) when the worker
        may come back: it was `silent` (removed by `tick`), or a report is awaited.
        """
        ws = self.workers.pop(address, None)
        if ws is None:
            self.data_movement.connection_closed(address)
            return
        self._record("remove-worker", address, reason)
        self.liveness.worker_left(address)
        self.deaths.record(address, reason)
        hold = await_report and address in self.nannies.nanny_of()
        may_return = (silent or hold) and not graceful
        self.idle.pop(ws, None)
        self._outbox.pop(address, None)
        lost: list[TaskRecord] = []
        for ts in ws.has_what:
            ts.who_has.discard(ws)
            if not ts.who_has and ts.state == MEMORY:
                lost.append(ts)
        ws.has_what.clear()
        for ts in lost:
            self._data_lost(ts, address if may_return else None)
        self.coordination.worker_removed(address)
        # Seceded tasks were running there too; the worker's books no longer need to
        # tell them apart.
        for ts in ws.long_running:
            ws.processing[ts] = 0.0
        ws.long_running.clear()
        ws.running.clear()
        self.stealing.worker_removed(ws)
        for ts in list(ws.processing):
            final = False
            if not graceful:
                ts.suspicious += 1
                if ts.workers_died is None:
                    ts.workers_died = []
                ts.workers_died.append(address)
                final = ts.suspicious > self.allowed_failures
                if final and hold:
                    continue  # stays on the departed worker's books until the report
            del ws.processing[ts]
            ts.processing_on = None
            if final:
                self._killed(ts)
            else:
                self.coordination.task_ended(ts.key)
                self._compute(ts)
        self.data_movement.worker_removed(address)
        self.uploads.worker_removed(address)
        self.dumps.worker_removed(address)
        if ws.processing:
            self.deaths.hold(ws, self.liveness.now + self.liveness.settings.death_report_wait)
        self._broadcast_to_clients(m.WorkersChanged([], [address]))
        self._queue_dirty = True
        self.nannies.finish_restarts()

    def _death_reported(self, address: str, reason: str) -> None:
        """A nanny said why the worker at `address` died: its data is gone for good."""
        self.deaths.reported(address, reason)
        self.lost_data.holder_gone(address)

    def _killed(self, ts: TaskRecord) -> None:
        """`ts` was running on more workers that died than allowed: it fails."""
        self.coordination.task_ended(ts.key)
        self._fail(ts, error_info_for(self.deaths.killed_worker(ts)), record=True)

    # --- time ---------------------------------------------------------------------------

    def tick(self, now: float) -> list[str]:
        """The clock moved to `now` (call once per heartbeat interval).

        Removes workers and disconnects clients that were silent for longer than their
        timeouts, removes for good the clients whose grace period ended, settles
        `KilledWorker` verdicts that waited long enough, and sends every connected peer
        a `Heartbeat`. Returns the peers declared gone: the caller closes their
        connections.
        """
        silent_workers, silent_clients, expired = self.liveness.advance(now)
        for address in silent_workers:
            timeout = self.liveness.settings.worker_timeout
            logger.warning("scheduler: worker %s sent nothing for %g s: removed", address, timeout)
            self.remove_worker(address, f"it sent no heartbeat for {timeout:g} s", silent=True)
        for client_id in silent_clients:
            timeout = self.liveness.settings.client_timeout
            logger.warning("scheduler: client %s sent nothing for %g s", client_id, timeout)
            self.client_disconnected(client_id)
        if expired:
            logger.info("scheduler: clients %s did not come back: released", expired)
            self.sessions.expire(expired)
        self.deaths.expire(now)
        self.stalls.tick(now)
        self.lost_data.expire(now)
        self.stealing.due = True  # a running task may have outlived its estimate by now
        for peer in self.liveness.present():
            self._send(peer, HEARTBEAT)
        for nanny_id in self.nannies.records:
            self._send(nanny_id, HEARTBEAT)
        return [*silent_workers, *silent_clients]

    def handle_worker_message(self, address: str, message: m.WorkerToScheduler | m.Common) -> None:
        """Apply one message from a worker.

        Raises `InvalidMessage` for disallowed types, and for a worker that was removed
        while its connection still delivers (its nanny reported it dead first).
        """
        handler = self._worker_handlers.get(type(message))
        if handler is None:
            raise InvalidMessage(f"workers may not send {type(message).__name__}")
        ws = self.workers.get(address)
        if ws is None:
            if address in self.data_movement.retired:
                return  # sent before the worker heard it was retired
            raise InvalidMessage(f"worker {address} is no longer registered")
        stimulus_id = self._stimulus_id = next(self._stimuli)
        self.log.append((stimulus_id, type(message).__name__, address, subject(message)))
        handler(ws, message)

    # --- nannies and restarts (see `nannies`) -------------------------------------------

    def add_nanny(self, registration: m.RegisterNanny) -> None:
        """A nanny connected; its id becomes a peer id for `flush`."""
        self.nannies.add(registration, self.id)

    def remove_nanny(self, nanny_id: str) -> None:
        """The nanny left; its worker leaves on its own connection."""
        if self.nannies.remove(nanny_id):
            self._outbox.pop(nanny_id, None)
            self.remote_calls.nanny_removed(nanny_id)

    def handle_nanny_message(self, nanny_id: str, message: m.NannyToScheduler | m.Common) -> None:
        """Apply one message from a nanny. Raises `InvalidMessage` for disallowed types."""
        self.nannies.handle(nanny_id, message)

    def clear_tasks(self, reason: str) -> None:
        """Forget every task.

        Each client hears `KeysCancelled` with `reason` for every key it wanted; workers
        are told to drop queued and running work and every result they hold.
        """
        for cs in self.clients.values():
            if cs.wants:
                self._send(cs.client_id, m.KeysCancelled([ts.key for ts in cs.wants], reason))
        for cs in (*self.clients.values(), self._fire_and_forget):
            for ts in list(cs.wants):
                self._unwant(cs, ts)
                self._check_release(ts)

    def _on_restart(self, cs: ClientRecord, msg: m.RestartRequest) -> None:
        """`Client.restart`: clear every task, then have every nanny replace its worker.

        Workers without a nanny keep running (with no data left). The client gets its
        `Reply` once every nanny reported a fresh worker and the replaced ones are gone.
        """
        reason = f"the cluster was restarted (Client.restart by {cs.name or cs.client_id})"
        self.clear_tasks(reason)
        self.nannies.restart(cs.client_id, msg.request_id, reason, wait=msg.wait_for_workers)

    def _on_restart_workers(self, cs: ClientRecord, msg: m.RestartWorkersRequest) -> None:
        """`Client.restart_workers`: have the nannies of these workers replace them.

        Their running tasks and the results only they held are recomputed elsewhere, as
        for any worker that leaves. Refused, restarting none, when a worker is unknown
        or has no nanny.
        """
        by_name = {ws.name: address for address, ws in self.workers.items()}
        nanny_of = self.nannies.nanny_of()
        addresses = [by_name.get(w, w) for w in msg.workers]
        unknown = [w for w, a in zip(msg.workers, addresses, strict=True) if a not in self.workers]
        no_nanny = [a for a in addresses if a in self.workers and a not in nanny_of]
        if unknown or no_nanny:
            problems = []
            if unknown:
                problems.append(f"unknown workers {unknown}")
            if no_nanny:
                problems.append(f"workers without a nanny {no_nanny}")
            self._send(cs.client_id, m.Reply(msg.request_id, None, "; ".join(problems)))
            return
        reason = f"restarted by Client.restart_workers ({cs.name or cs.client_id})"
        self.nannies.restart(
            cs.client_id,
            msg.request_id,
            reason,
            wait=True,
            nanny_ids=[nanny_of[a] for a in addresses],
        )

    # --- graph updates ------------------------------------------------------------------

    def _on_update_graph(self, cs: ClientRecord, msg: m.UpdateGraph) -> None:
        for token, payload in msg.functions.items():
            if token not in cs.functions:
                cs.functions.add(token)
                self._function_refs[token] += 1
                self.functions.setdefault(token, payload)
        for spec in msg.tasks:
            ts = self.tasks.get(spec.key)
            if ts is not None:
                self._want(cs, ts)
                continue
            if spec.function not in self.functions:
                raise InvalidMessage(f"task {spec.key!r} uses undefined function {spec.function!r}")
            ts = TaskRecord(spec.key, spec.function, spec.args, self._order(spec.priority))
            self._function_refs[spec.function] += 1
            ts.retries = spec.retries
            ts.timeout = spec.timeout
            ts.actor = spec.actor
            if spec.workers is not None:
                ts.restrictions = frozenset(spec.workers)
                ts.allow_other_workers = spec.allow_other_workers
            ts.resources = spec.resources or None
            self.tasks[spec.key] = ts
            cs.wants.add(ts)
            ts.add_wanter(cs)
            if spec.dependencies:
                tasks = self.tasks
                missing = [key for key in spec.dependencies if key not in tasks]
                if missing:
                    error = DependencyError(f"task {spec.key!r} depends on unknown keys {missing}")
                    self._fail(ts, error_info_for(error))
                    continue
                ts.dependencies = [tasks[key] for key in spec.dependencies]
                for dep in ts.dependencies:
                    dep.add_dependent(ts)
            self._compute(ts)

    def retry(self, keys: list[str]) -> None:
        """Run the erred tasks among `keys` again (`Client.retry`), with the erred tasks
        they depend on; keys that are not erred are left alone."""
        erred: list[TaskRecord] = []
        seen: set[TaskRecord] = set()
        stack = [ts for key in keys if (ts := self.tasks.get(key)) is not None]
        roots = [ts for ts in stack if ts.state == ERRED]
        while stack:
            ts = stack.pop()
            if ts in seen or ts.state != ERRED:
                continue
            seen.add(ts)
            erred.append(ts)
            stack.extend(ts.dependencies)
        for ts in erred:
            ts.state = RELEASED
            ts.error = None
            self.transitions += 1
        for ts in roots:
            if ts.state == RELEASED:
                self._compute(ts)

    def _order(self, priority: int) -> int:
        """Where a new task runs relative to others: higher `priority` first, then FIFO."""
        return -priority * PRIORITY_SPAN + next(self._sequence)

    def _want(self, cs: ClientRecord, ts: TaskRecord) -> None:
        """`cs` now wants an existing task: report its outcome if it already has one."""
        cs.wants.add(ts)
        ts.add_wanter(cs)
        if ts.state == MEMORY:
            self._send(cs.client_id, m.KeyDone(ts.key, ts.type_name, ts.nbytes, None))
        elif ts.state == ERRED:
            assert ts.error is not None
            self._send(cs.client_id, m.KeyErred(ts.key, ts.error))
        elif ts.state == RELEASED:
            self._compute(ts)

    def _compute(self, root: TaskRecord) -> None:
        """Bring a task towards memory, recomputing released inputs first (lineage)."""
        order: list[TaskRecord] = []
        stack: list[tuple[TaskRecord, bool]] = [(root, False)]
        seen: set[TaskRecord] = set()
        while stack:  # iterative post-order: long chains must not hit the recursion limit
            ts, expanded = stack.pop()
            if expanded:
                order.append(ts)
                continue
            if ts in seen:
                continue
            seen.add(ts)
            stack.append((ts, True))
            for dep in ts.dependencies:
                if dep.state == RELEASED and dep not in seen:
                    stack.append((dep, False))
        for ts in order:
            self._compute_one(ts)

    def _compute_one(self, ts: TaskRecord) -> None:
        """Move one task to waiting (or further) once its released inputs are handled."""
        if ts.function is None:
            if ts in self.lost_data:
                return  # awaited from a worker that may come back
            self._fail(
                ts,
                error_info_for(
                    FutureLostError(f"the data of {ts.key!r} was lost and cannot be recomputed")
                ),
            )
            return
        ts.waiting_count = 0
        for dep in ts.dependencies:
            if dep.state == ERRED:
                assert dep.error is not None
                self._fail(ts, dep.error)
                return
        ts.state = WAITING
        self.transitions += 1
        for dep in ts.dependencies:
            dep.add_waiter(ts)
            if dep.state != MEMORY:
                ts.waiting_count += 1
        if not ts.waiting_count:
            self._make_ready(ts)

    def _make_ready(self, ts: TaskRecord) -> None:
        """All inputs are in memory: queue the task or send it to a worker."""
        if ts.is_root:
            ts.state = QUEUED
            heapq.heappush(self._queue, ts)
            self._queue_dirty = True
            return
        ws = choose_worker(ts, self.workers, self.idle, self.clock(), self.stalls.stalled)
        if ws is None:
            ts.state = NO_WORKER
            self.no_worker[ts] = None
            if self.workers and not self._retrying_no_worker:
                self._tell_no_worker(ts)
        else:
            self._assign(ts, ws)

    def _tell_no_worker(self, ts: TaskRecord) -> None:
        """Workers are connected but none may run `ts`: tell the clients that want it
        (or its dependents), once, in one `KeysWithoutWorker` per client and flush."""
        clients = set(ts.who_wants)
        for dependent in ts.dependents:
            clients.update(dependent.who_wants)
        for cs in clients:
            self._no_worker_news[cs.client_id].append(ts.key)

    def _schedule_queued(self) -> None:
        """Hand queued root tasks, round robin, to the workers with room (`has_room`)."""
        self._queue_dirty = False
        queue = self._queue
        while queue and queue[0].state != QUEUED:
            heapq.heappop(queue)
        if not queue or not self.workers:
            return
        now = self.clock()
        # Per worker: [free threads, seconds left under the window, tasks left under the
        # count bound], spent as tasks are handed out (`has_room`, without recomputing).
        stalled = self.stalls.stalled
        room = {
            ws: offer_limits(ws, now)
            for ws in self.workers.values()
            if has_room(ws, now) and ws not in stalled
        }
        while queue and room:
            for ws in list(room):
                ts = heapq.heappop(queue)
                while ts.state != QUEUED:
                    if not queue:
                        return
                    ts = heapq.heappop(queue)
                estimate = self._assign(ts, ws, now)
                limits = room[ws]
                limits[0] -= 1
                limits[1] -= estimate
                limits[2] -= 1
                if limits[0] <= 0 and (limits[1] <= 0.0 or limits[2] <= 0):
                    del room[ws]
                if not queue:
                    return

    def _assign(self, ts: TaskRecord, ws: WorkerRecord, now: float | None = None) -> float:
        """Send `ts` to `ws` (at time `now`, the clock's by default); return its estimate."""
        ts.state = PROCESSING
        self.transitions += 1
        ts.processing_on = ws
        estimate = self.durations.get(ts.prefix)
        ws.processing[ts] = estimate
        ws.occupancy += estimate
        if len(ws.running) < ws.nthreads:
            ws.running[ts] = self.clock() if now is None else now
        if len(ws.processing) >= ws.nthreads:
            self.idle.pop(ws, None)
            if len(ws.processing) > ws.nthreads:
                self.stealing.queued[ws] = None
        assert ts.function is not None
        assert ts.args is not None
        if ts.function not in ws.functions:
            ws.functions.add(ts.function)
            self._send(ws.address, m.DefineFunction(ts.function, self.functions[ts.function]))
        who_has = {dep.key: [holder.address for holder in dep.who_has] for dep in ts.dependencies}
        self._send(
            ws.address,
            m.RunTask(
                ts.key,
                ts.function,
                ts.args,
                who_has,
                [ts.priority],
                bool(ts.who_wants),
                ts.resources,
                ts.timeout,
                ts.actor,
                ts.restarts,
            ),
        )
        return estimate

    def _unassign(self, ts: TaskRecord) -> WorkerRecord | None:
        """Take a processing task off its worker's books; return that worker."""
        ws = ts.processing_on
        if ws is None:
            return None
        ts.processing_on = None
        if self.stealing.in_flight:
            self.stealing.forget(ts)
        estimate = ws.processing.pop(ts, None)
        if estimate is not None:
            ws.occupancy = max(0.0, ws.occupancy - estimate)
            if ts in ws.running:
                del ws.running[ts]
                self._next_running(ws)
        else:
            ws.long_running.pop(ts, None)
        if (
            len(ws.processing) < ws.nthreads
            and self.workers.get(ws.address) is ws
            and ws not in self.stalls.stalled
        ):
            self.idle[ws] = None
            self.stealing.due = True
        self._queue_dirty = True
        return ws

    def _next_running(self, ws: WorkerRecord) -> None:
        """A thread of `ws` freed up: presume the oldest queued task started on it now."""
        running = ws.running
        if len(running) >= ws.nthreads or len(ws.processing) <= len(running):
            return
        now = self.clock()
        for ts in ws.processing:
            if ts not in running:
                running[ts] = now
                if len(running) >= ws.nthreads:
                    return

    def move_task(self, ts: TaskRecord, ws: WorkerRecord | None) -> None:
        """Work stealing: `ts` left its worker unstarted; run it on `ws` instead (placed
        afresh when `ws` is None, left or is retiring)."""
        self._unassign(ts)
        if (
            ws is not None
            and self.workers.get(ws.address) is ws
            and ws.address not in self.data_movement.retiring
        ):
            self._assign(ts, ws)
        else:
            ts.state = WAITING
            self._make_ready(ts)

    def _refresh_estimates(self) -> None:
        """Some prefix's duration estimate moved far from the one its processing tasks
        were booked with: book them again, so backlogs reflect what was learnt."""
        stale = self.durations.take_stale()
        get = self.durations.get
        for ws in self.workers.values():
            processing = ws.processing
            total = 0.0
            for ts, old in processing.items():
                if ts.prefix in stale:
                    old = processing[ts] = get(ts.prefix)
                total += old
            ws.occupancy = total

    # --- results --------------------------------------------------------------------------

    def _on_task_finished(self, ws: WorkerRecord, msg: m.TaskFinished) -> None:
        ts = self.tasks.get(msg.key)
        if ts is None or ts.state != PROCESSING or ts.processing_on is not ws:
            if ts is not None and ts.state == MEMORY:
                self._add_replica(ts, ws, msg.nbytes)
            else:
                self._send_key(ws.address, m.FreeKeys, msg.key)
            return
        self._unassign(ts)
        self.durations.observe(ts.prefix, msg.stop - msg.start)
        self.activity.task_ran(ts.key, ts.prefix, ws.address, msg.start, msg.stop, OK)
        ts.state = MEMORY
        self.transitions += 1
        ts.type_name = msg.type_name
        self._add_replica(ts, ws, msg.nbytes)
        if ts.who_wants:
            done = m.KeyDone(ts.key, msg.type_name, msg.nbytes, msg.value)
            for cs in list(ts.who_wants):
                if cs is self._fire_and_forget:
                    self._unwant(cs, ts)
                else:
                    self._send(cs.client_id, done)
        for dep in ts.dependencies:
            dep.waiters.discard(ts)
            self._check_release(dep)
        for dependent in ts.dependents:
            # A waiting dependent counted this input: it was not in memory then.
            if dependent.state == WAITING:
                dependent.waiting_count -= 1
                if not dependent.waiting_count:
                    self._make_ready(dependent)
        self._check_release(ts)

    def add_replica(self, ts: TaskRecord, ws: WorkerRecord, nbytes: int) -> None:
        """`ws` holds a copy of `ts` (in memory) now."""
        self._add_replica(ts, ws, nbytes)

    def drop_replica(self, ts: TaskRecord, ws: WorkerRecord) -> None:
        """Tell `ws` to drop its copy of `ts`; the data is lost if it was the last one."""
        if ts not in ws.has_what:
            return
        del ws.has_what[ts]
        ws.nbytes -= ts.nbytes
        ts.who_has.discard(ws)
        self._send_key(ws.address, m.FreeKeys, ts.key)
        if not ts.who_has:
            self._data_lost(ts)

    def _add_replica(self, ts: TaskRecord, ws: WorkerRecord, nbytes: int) -> None:
        if ws not in ts.who_has:
            ts.add_holder(ws)
            ws.has_what[ts] = None
            ws.nbytes += nbytes
        ts.nbytes = nbytes

    def _on_task_failed(self, ws: WorkerRecord, msg: m.TaskFailed) -> None:
        ts = self.tasks.get(msg.key)
        if ts is None or ts.state != PROCESSING or ts.processing_on is not ws:
            return
        self._unassign(ts)
        self.coordination.task_ended(ts.key)
        self.activity.task_ran(ts.key, ts.prefix, ws.address, msg.start, msg.stop, FAILED)
        if ts.retries > 0:
            ts.retries -= 1
            ts.state = WAITING
            self._make_ready(ts)
            return
        self._fail(ts, msg.error, record=True)

    def _on_task_seceded(self, ws: WorkerRecord, msg: m.TaskSeceded) -> None:
        """The task left its thread slot (`secede`): `ws` has room for another task."""
        ts = self.tasks.get(msg.key)
        if ts is None or ts.processing_on is not ws or ts not in ws.processing:
            return
        estimate = ws.processing.pop(ts)
        ws.occupancy = max(0.0, ws.occupancy - estimate)
        if ts in ws.running:
            del ws.running[ts]
            self._next_running(ws)
        ws.long_running[ts] = None
        if len(ws.processing) < ws.nthreads and ws not in self.stalls.stalled:
            self.idle[ws] = None
            self.stealing.due = True
        self._queue_dirty = True

    def _on_task_rescheduled(self, ws: WorkerRecord, msg: m.TaskRescheduled) -> None:
        """The task raised `Reschedule`: place it again (maybe on another worker)."""
        ts = self.tasks.get(msg.key)
        if ts is None or ts.state != PROCESSING or ts.processing_on is not ws:
            return
        self._unassign(ts)
        self.coordination.task_ended(ts.key)
        ts.state = WAITING
        self._make_ready(ts)

    def _fail(self, ts: TaskRecord, error: m.ErrorInfo, *, record: bool = False) -> None:
        """Mark `ts` and every dependent that cannot finish without it as erred.

        `record` adds the error to `activity` (once, for the task that caused it).
        """
        if record:
            self.activity.error(self.clock(), ts.key, ts.prefix, error.worker, error.text)
        stack = [ts]
        while stack:
            task = stack.pop()
            if task.state in (ERRED, MEMORY):
                continue
            self._stop(task)
            task.state = ERRED
            self.transitions += 1
            task.error = error
            for cs in list(task.who_wants):
                if cs is self._fire_and_forget:
                    self._unwant(cs, task)
                else:
                    self._send(cs.client_id, m.KeyErred(task.key, error))
            for dep in task.dependencies:
                dep.waiters.discard(task)
                self._check_release(dep)
            stack.extend(task.dependents)
            self._maybe_forget(task)

    def _on_missing_data(self, ws: WorkerRecord, msg: m.MissingData) -> None:
        """A worker could not fetch a dependency: fix `who_has` and try the task again."""
        dep = self.tasks.get(msg.dependency)
        if dep is not None:
            for address in msg.tried:
                holder = self.workers.get(address)
                if holder is not None and holder in dep.who_has:
                    dep.who_has.discard(holder)
                    holder.has_what.pop(dep, None)
            if dep.state == MEMORY and not dep.who_has:
                self._data_lost(dep)
        ts = self.tasks.get(msg.key)
        if ts is not None and ts.state == PROCESSING and ts.processing_on is ws:
            self._unassign(ts)
            self._compute(ts)

    def _on_keys_released(self, ws: WorkerRecord, msg: m.KeysReleased) -> None:
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is not None and ws in ts.who_has:
                ts.who_has.discard(ws)
                ws.has_what.pop(ts, None)
                if ts.state == MEMORY and not ts.who_has:
                    self._data_lost(ts)

    def _data_lost(self, ts: TaskRecord, returning: str | None = None) -> None:
        """The last copy of `ts` is gone: recompute it if needed, else just release it.

        Data that cannot be recomputed is awaited from the worker at `returning`, when
        given, before it fails (`lost_data`).
        """
        ts.state = RELEASED
        self.transitions += 1
        for cs in ts.who_wants:
            if cs is not self._fire_and_forget:
                self._send(cs.client_id, m.KeysLost([ts.key]))
        for dependent in ts.dependents:
            if dependent.state == WAITING:
                dependent.waiting_count += 1
        if ts.actor is not None and (ts.who_wants or ts.waiters):
            if ts.restarts >= ts.actor.max_restarts:
                reason = (
                    f"actor {ts.key!r} lost its worker and has no restarts left "
                    f"(max_restarts={ts.actor.max_restarts})"
                )
                self._fail(ts, error_info_for(ActorDied(reason)))
                return
            ts.restarts += 1
        if ts.function is None:
            if (ts.who_wants or ts.waiters) and not (
                returning is not None and self.lost_data.park(ts, returning)
            ):
                self._fail(
                    ts,
                    error_info_for(
                        FutureLostError(
                            f"the only workers holding {ts.key!r} are gone "
                            "and it cannot be recomputed"
                        )
                    ),
                )
            return
        if ts.who_wants or ts.waiters:
            self._compute(ts)
        else:
            self._maybe_forget(ts)

    # --- releasing --------------------------------------------------------------------

    def _unwant(self, cs: ClientRecord, ts: TaskRecord) -> None:
        cs.wants.discard(ts)
        ts.who_wants.discard(cs)

    def _on_release_keys(self, cs: ClientRecord, msg: m.ReleaseKeys) -> None:
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is not None and cs in ts.who_wants:
                self._unwant(cs, ts)
                self._check_release(ts)

    def release_if_unneeded(self, ts: TaskRecord) -> None:
        """Release `ts` (work, data, then the record) if nothing needs it any more."""
        self._check_release(ts)

    def _check_release(self, ts: TaskRecord) -> None:
        """Drop work and data that no client wants and no unfinished dependent needs."""
        if ts.who_wants or ts.waiters:
            return
        if ts.state == MEMORY:
            self._release_data(ts)
        elif ts.state in (WAITING, QUEUED, NO_WORKER, PROCESSING):
            self._stop(ts)
            ts.state = RELEASED
            self.transitions += 1
            for dep in ts.dependencies:
                dep.waiters.discard(ts)
                self._check_release(dep)
        self._maybe_forget(ts)

    def _stop(self, ts: TaskRecord) -> None:
        """Undo scheduling of a task that will not run after all."""
        if ts.state == PROCESSING:
            ws = self._unassign(ts)
            if ws is not None:
                self._send_key(ws.address, m.CancelTask, ts.key)
            self.coordination.task_ended(ts.key)
        elif ts.state == NO_WORKER:
            self.no_worker.pop(ts, None)
        ts.waiting_count = 0

    def _release_data(self, ts: TaskRecord) -> None:
        for ws in ts.who_has:
            ws.has_what.pop(ts, None)
            ws.nbytes -= ts.nbytes
            self._send_key(ws.address, m.FreeKeys, ts.key)
        ts.who_has = EMPTY
        ts.state = RELEASED
        self.transitions += 1

    def _maybe_forget(self, ts: TaskRecord) -> None:
        """Forget a task nobody wants and nothing depends on, then its orphaned inputs."""
        stack = [ts]
        while stack:
            task = stack.pop()
            if task.who_wants or task.dependents or task.key not in self.tasks:
                continue
            if task.state == MEMORY:
                if task.waiters:
                    continue
                self._release_data(task)
            elif task.state not in (RELEASED, ERRED):
                continue
            del self.tasks[task.key]
            if task.function is not None:
                self._unref_function(task.function)
            for dep in task.dependencies:
                dep.dependents.discard(task)
                dep.waiters.discard(task)
                if dep.state == MEMORY and not dep.waiters and not dep.who_wants:
                    self._release_data(dep)
                stack.append(dep)

    def _unref_function(self, token: str) -> None:
        self._function_refs[token] -= 1
        if self._function_refs[token] <= 0:
            del self._function_refs[token]
            self.functions.pop(token, None)
            for ws in self.workers.values():
                if token in ws.functions:
                    ws.functions.discard(token)
                    self._send(ws.address, m.ForgetFunctions([token]))

    # --- cancel, fire and forget, scatter -----------------------------------------

    def _on_cancel_keys(self, cs: ClientRecord, msg: m.CancelKeys) -> None:
        """Drop the keys (and their dependents) for this client, or for everyone if forced.

        A task other clients still want keeps running unless `force` is set; its
        dependents are then left alone too. Work nobody needs any more stops through
        the usual release cascade.
        """
        requested = set(msg.keys)
        stack = [self.tasks[key] for key in msg.keys if key in self.tasks]
        seen: set[TaskRecord] = set()
        sole = {cs, self._fire_and_forget}
        while stack:
            ts = stack.pop()
            if ts in seen or ts.key not in self.tasks:
                continue
            seen.add(ts)
            if not msg.force and not ts.who_wants <= sole:
                if cs in ts.who_wants:
                    self._unwant(cs, ts)
                    self._check_release(ts)
                continue
            for client in list(ts.who_wants):
                self._unwant(client, ts)
                if client is not self._fire_and_forget and (
                    client is not cs or ts.key not in requested
                ):
                    self._send(client.client_id, m.KeysCancelled([ts.key], "cancelled"))
            stack.extend(ts.dependents)
            self._check_release(ts)

    def _on_want_keys(self, cs: ClientRecord, msg: m.WantKeys) -> None:
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is None:
                error = FutureLostError(f"the scheduler does not know key {key!r}")
                self._send(cs.client_id, m.KeyErred(key, error_info_for(error)))
            elif cs not in ts.who_wants:
                self._want(cs, ts)

    def _on_fire_and_forget(self, cs: ClientRecord, msg: m.FireAndForget) -> None:
        ff = self._fire_and_forget
        for key in msg.keys:
            ts = self.tasks.get(key)
            if ts is not None and ts.state not in (MEMORY, ERRED):
                ff.wants.add(ts)
                ts.add_wanter(ff)

    def _on_register_scattered(self, cs: ClientRecord, msg: m.RegisterScattered) -> None:
        for key, addresses in msg.who_has.items():
            ts = self.tasks.get(key)
            was_in_memory = ts is not None and ts.state == MEMORY
            if ts is None:
                ts = TaskRecord(key, None, None, self._order(0))
                self.tasks[key] = ts
            elif ts.state not in (MEMORY, RELEASED):
                self._stop(ts)
                for dep in ts.dependencies:
                    dep.waiters.discard(ts)
            ts.state = MEMORY
            ts.error = None
            ts.type_name = msg.type_names.get(key, "")
            cs.wants.add(ts)
            ts.add_wanter(cs)
            for address in addresses:
                ws = self.workers.get(address)
                if ws is not None:
                    self._add_replica(ts, ws, msg.nbytes.get(key, 0))
            if not ts.who_has:
                self._data_lost(ts)
                continue
            if was_in_memory:
                continue  # more replicas of data its dependents already counted as there
            for dependent in ts.dependents:
                if dependent.state == WAITING:
                    dependent.waiting_count -= 1
                    if not dependent.waiting_count:
                        self._make_ready(dependent)

    # --- heartbeats, queries ----------------------------------------------------------

    def _on_heartbeat(self, ws: WorkerRecord, msg: m.WorkerHeartbeat) -> None:
        ws.heartbeat = msg
        ws.last_seen = self.clock()

    def ready_tasks(self) -> Iterator[TaskRecord]:
        """Tasks ready to run that no worker has yet: queued root tasks, then tasks that
        wait for a worker able to run them."""
        yield from (ts for ts in self._queue if ts.state == QUEUED)
        yield from self.no_worker

    def validate(self) -> None:
        """Check every invariant between records; raise AssertionError on the first broken.

        Costs a pass over all tasks and workers: for tests, not for production.
        """
        check_invariants(self)


def _ignore(cs: ClientRecord, msg: Any) -> None:
    """Handler of messages that only show the peer is alive (the actor noted that)."""
