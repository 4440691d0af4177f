"""`SchedulerState`: the scheduler's whole logic as a sans-IO state machine.

Events come in as method calls (`add_client`, `handle_client_message`,
`handle_worker_message`, `remove_worker`, ...); the messages to send come out of
`flush()` as ``{peer id: [messages]}``, where a peer id is a worker address or a client
id. Nothing here awaits, sleeps or touches a socket, so tests drive it directly and
simulations run it at scales no machine could host.

This module keeps the records, the membership of clients, workers and nannies, the
clock (`tick`) and the dispatch of messages; its parts hold the rest, each given only
the records and callbacks it needs:

- `lifecycle.TaskLifecycle`: every task transition (see there for the states);
- `assignment.Assignments`: the queue of ready root tasks and each worker's books;
- `wants.ClientWants`: what clients add, want, release and cancel;
- `functions.FunctionStore`: function payloads and who refers to them;
- `outbox.Outbox`: the messages waiting for the next flush;
- and the cluster services (`sessions`, `nannies`, `coordination`, `data_movement`,
  `stealing`, ...), one module each.

A task stays known (possibly `released`, without data) while any dependent record needs
its lineage; it is forgotten when no client wants it and no record depends on it. A
task's data is released as soon as no client wants it and no unfinished dependent needs
it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from .._eventlog import DEFAULT_LENGTH, new_log, subject
from .._logbuffer import LogBuffer
from .._plugins import NANNY
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from ..protocol.serialize import Serialized
from .activity import Activity
from .assignment import Assignments
from .coordination import CoordinationState
from .data_movement import DataMovement
from .datasets import DatasetState
from .deaths import CONNECTION_CLOSED, WorkerDeaths
from .diagnostics import Diagnostics
from .dumps import ClusterDumps
from .errors import InvalidMessage
from .functions import FunctionStore
from .holds import HOLDER_ID, KeyHolds
from .inspection import ClusterQueries
from .invariants import check_invariants
from .lifecycle import TaskLifecycle
from .liveness import Liveness, LivenessSettings
from .lost_data import LostData
from .nannies import Nannies
from .outbox import Outbox
from .output import OutputForwarding
from .placement import DurationEstimates
from .plugins import Plugins
from .records import MEMORY, QUEUED, WAITING, ClientRecord, TaskRecord, WorkerRecord
from .remote_calls import RemoteCalls
from .sessions import ClientSessions
from .stalls import WorkerStalls
from .stealing import WorkStealing
from .story import TaskStory
from .uploads import Uploads
from .wants import ClientWants

logger = logging.getLogger("trident.scheduler")

FIRE_AND_FORGET = "fire-and-forget"
HEARTBEAT = m.Heartbeat()


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
        #: where clients reach the scheduler (set by the actor once it listens) and when
        #: the state was made, for `Client.scheduler_info`
        self.address = ""
        self.started = clock()
        self.tasks: dict[str, TaskRecord] = {}
        self.workers: dict[str, WorkerRecord] = {}
        self.clients: dict[str, ClientRecord] = {}
        self.durations = DurationEstimates()
        #: every task transition, recent ones kept (`Client.story`, scheduler plugins)
        self.story = TaskStory(clock)
        #: workers with at least one free thread, in the order they became free
        self.idle: dict[WorkerRecord, None] = {}
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
        self.outbox = Outbox()
        self._send = self.outbox.send
        self._fire_and_forget = ClientRecord(FIRE_AND_FORGET, FIRE_AND_FORGET)
        #: queued tasks moving from busy workers to idle ones (issue 16)
        self.stealing = WorkStealing(self)
        #: workers gone quiet, and unrecomputable data awaited from departed workers
        self.stalls = WorkerStalls(self)
        self.lost_data = LostData(self)
        #: function payloads by token, and who refers to them
        self.function_store = FunctionStore(self.workers, self._send)
        self.functions: dict[str, Serialized] = self.function_store.payloads
        self.books = Assignments(
            self.workers,
            self.idle,
            self.durations,
            self.functions,
            self._send,
            clock,
            self.stealing,
            self.stalls.stalled,
            self.story.transition,
        )
        #: when peers were last heard from, and clients that may still resume
        self.liveness = Liveness(liveness)
        #: why workers left; KilledWorker verdicts waiting for a nanny's report
        self.deaths = WorkerDeaths(self._killed)
        self.nannies = Nannies(self.workers, self._send, self.remove_worker, self._death_reported)
        #: keys kept alive for stored values (queues, variables, datasets) and handoffs
        self.holds = KeyHolds(self)
        self.coordination = CoordinationState(self._send, self.holds)
        self.lifecycle = TaskLifecycle(
            self.tasks,
            self.workers,
            self.books,
            self.function_store,
            self.durations,
            self.activity,
            self._fire_and_forget,
            self.coordination.task_ended,
            self._send,
            self.outbox.send_key,
            clock,
            self.stalls.stalled,
            self.lost_data,
            self.story,
        )
        self.no_worker = self.lifecycle.no_worker
        self.wants = ClientWants(
            self.tasks,
            self.clients,
            self.workers,
            self.lifecycle,
            self.function_store,
            self._fire_and_forget,
            self._send,
        )
        self.sessions = ClientSessions(self)
        self.datasets = DatasetState(self._send, self.holds)
        self._client_handlers: dict[type, Callable[[ClientRecord, Any], None]] = {
            m.RestartRequest: self._on_restart,
            m.RestartWorkersRequest: self._on_restart_workers,
            m.Heartbeat: _ignore,
        }
        self._worker_handlers: dict[type, Callable[[WorkerRecord, Any], None]] = {
            m.WorkerHeartbeat: self._on_heartbeat,
        }
        # Cluster administration (issue 6): queries, moving data, uploads, remote calls.
        self.queries = ClusterQueries(self, self._send)
        self.output = OutputForwarding(self.tasks, self.workers, self._send)
        self.data_movement = DataMovement(self, self._send)
        self.uploads = Uploads(self.workers, self._send)
        #: worker, nanny and scheduler plugins (`Client.register_plugin`)
        self.plugins = Plugins(self.workers, self.nannies, self.story, self._send, error_info_for)
        self.remote_calls = RemoteCalls(self.workers, self.nannies, self._send, error_info_for)
        self.dumps = ClusterDumps(self, self._send)
        #: events by topic, the task stream and retries (`Client.log_event`, ...)
        self.diagnostics = Diagnostics(self, self._send)
        parts = (
            self.wants,
            self.coordination,
            self.datasets,
            self.queries,
            self.output,
            self.data_movement,
            self.uploads,
            self.plugins,
            self.remote_calls,
            self.dumps,
            self.diagnostics,
        )
        for part in parts:
            self._client_handlers.update(part.handlers())
        self._worker_handlers.update(self.lifecycle.worker_handlers())
        self._worker_handlers.update(self.output.worker_handlers())
        self._worker_handlers[m.ReplicasAcquired] = self.data_movement.on_replicas_acquired
        self._worker_handlers[m.WorkerRetiring] = self.data_movement.on_worker_retiring
        self._worker_handlers[m.FileStored] = self.uploads.on_file_stored
        self._worker_handlers[m.PluginDone] = self.plugins.on_worker_done
        self._client_handlers[m.StoryRequest] = self._on_story
        self._worker_handlers[m.WorkerStateDumped] = self.dumps.on_worker_dumped
        self._worker_handlers[m.TasksRecalled] = self.stealing.on_tasks_recalled

    @property
    def transitions(self) -> int:
        """How many task transitions happened so far."""
        return self.lifecycle.transitions

    # --- output -------------------------------------------------------------------------

    def _broadcast_to_clients(self, message: Any) -> None:
        for client_id in self.clients:
            self._send(client_id, message)

    def _record(self, event: str, peer: str | None, about: Any) -> None:
        """Log an event under a fresh stimulus id."""
        stimulus_id = self._stimulus_id = self.story.stimulus_id = next(self._stimuli)
        self.log.append((stimulus_id, event, peer, about))

    def flush(self) -> dict[str, list[Any]]:
        """Finish deferred scheduling and return (and forget) the messages to send.

        A flush that sends anything or made transitions is logged under the latest
        event's stimulus id.
        """
        books = self.books
        books.refresh_estimates()
        if books.dirty:
            self.lifecycle.schedule_queued()
        if self.stealing.due:
            self.stealing.balance(self.clock())
        self.lifecycle.send_no_worker_news()
        out = self.outbox.take()
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
        self.sessions.welcome(cs)
        self.plugins.client_added(client_id)

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
        self.outbox.drop(client_id)
        self.coordination.client_removed(client_id)
        self.diagnostics.client_removed(client_id)
        self.holds.client_removed(client_id)
        self.data_movement.client_removed(client_id)
        self.uploads.client_removed(client_id)
        self.plugins.client_gone(client_id)
        self.remote_calls.client_removed(client_id)
        self.output.client_left(cs)
        self.wants.client_removed(cs)
        self.nannies.forget_client(client_id)

    def handle_client_message(
        self, client_id: str, message: m.ClientToScheduler | m.Common
    ) -> None:
        """Apply one message from a client. Raises `InvalidMessage` for disallowed types."""
        handler = self._client_handlers.get(type(message))
        if handler is None:
            raise InvalidMessage(f"clients may not send {type(message).__name__}")
        stimulus_id = self._stimulus_id = self.story.stimulus_id = next(self._stimuli)
        self.log.append((stimulus_id, type(message).__name__, client_id, subject(message)))
        handler(self.clients[client_id], message)
        if self.plugins.scheduler_plugins and type(message) is m.UpdateGraph:
            self.plugins.graph_updated(client_id, message)

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
        self.plugins.worker_added(ws.address)
        self.output.worker_added(ws.address)
        unknown = []
        for key, nbytes in (keys or {}).items():
            ts = self.tasks.get(key)
            if ts is not None and ts.state == MEMORY:
                self.lifecycle.add_replica(ts, ws, nbytes)
            elif ts is None or not self.lost_data.restore(ts, ws, nbytes):
                unknown.append(key)
        if unknown:
            self._send(ws.address, m.FreeKeys(unknown))
        self.lost_data.holder_gone(ws.address)  # what it came back without is lost
        self._broadcast_to_clients(m.WorkersChanged([info], []))
        self.lifecycle.retry_no_worker()
        self.books.dirty = True
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
        self.outbox.drop(address)
        lost: list[TaskRecord] = []
        for ts in ws.has_what:
            ts.who_has.discard(ws)
            if not ts.who_has and ts.state == MEMORY:
                lost.append(ts)
        ws.has_what.clear()
        for ts in lost:
            self.lifecycle.data_lost(ts, address if may_return else None)
        self.coordination.worker_removed(address)
        # Seceded tasks were running there too; the worker's books no longer need to
        # tell them apart.
        for ts in ws.long_running:
            ws.processing[ts] = 0.0
        ws.long_running.clear()
        ws.running.clear()
        ws.unstarted_roots.clear()
        ws.unstarted_root_bytes = 0
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
                self.lifecycle.compute(ts)
        self.data_movement.worker_removed(address)
        self.uploads.worker_removed(address)
        self.plugins.worker_removed(address, reason)
        self.dumps.worker_removed(address)
        if ws.processing:
            self.deaths.hold(ws, self.liveness.now + self.liveness.settings.death_report_wait)
        self._broadcast_to_clients(m.WorkersChanged([], [address]))
        self.books.dirty = True
        self.nannies.finish_restarts()

    def _death_reported(self, address: str, reason: str) -> None:
        """A nanny said why the worker at `address` died: its data is gone for good."""
        self.deaths.reported(address, reason)
        self.lost_data.holder_gone(address)

    def _killed(self, ts: TaskRecord) -> None:
        """`ts` was running on more workers that died than allowed: it fails."""
        self.coordination.task_ended(ts.key)
        self.lifecycle.fail(ts, error_info_for(self.deaths.killed_worker(ts)), record=True)

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
        stimulus_id = self._stimulus_id = self.story.stimulus_id = next(self._stimuli)
        self.log.append((stimulus_id, type(message).__name__, address, subject(message)))
        handler(ws, message)

    # --- nannies and restarts (see `nannies`) -------------------------------------------

    def add_nanny(self, registration: m.RegisterNanny) -> None:
        """A nanny connected; its id becomes a peer id for `flush`."""
        self.nannies.add(registration, self.id)
        self.plugins.peer_added(registration.nanny_id, NANNY)

    def remove_nanny(self, nanny_id: str) -> None:
        """The nanny left; its worker leaves on its own connection."""
        if self.nannies.remove(nanny_id):
            self.outbox.drop(nanny_id)
            self.remote_calls.nanny_removed(nanny_id)
            self.plugins.peer_removed(nanny_id)

    def handle_nanny_message(self, nanny_id: str, message: m.NannyToScheduler | m.Common) -> None:
        """Apply one message from a nanny. Raises `InvalidMessage` for disallowed types."""
        self.nannies.handle(nanny_id, message)

    def clear_tasks(self, reason: str) -> None:
        """Forget every task.

        Each client hears `KeysCancelled` with `reason` for every key it wanted; workers
        are told to drop queued and running work and every result they hold.
        """
        self.wants.clear_tasks(reason)

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

    # --- tasks (see `lifecycle` and `assignment`) ---------------------------------------

    def add_replica(self, ts: TaskRecord, ws: WorkerRecord, nbytes: int) -> None:
        """`ws` holds a copy of `ts` (in memory) now."""
        self.lifecycle.add_replica(ts, ws, nbytes)

    def drop_replica(self, ts: TaskRecord, ws: WorkerRecord) -> None:
        """Tell `ws` to drop its copy of `ts`; the data is lost if it was the last one."""
        self.lifecycle.drop_replica(ts, ws)

    def release_if_unneeded(self, ts: TaskRecord) -> None:
        """Release `ts` (work, data, then the record) if nothing needs it any more."""
        self.lifecycle.check_release(ts)

    def retry(self, keys: list[str]) -> None:
        """Run the erred tasks among `keys` again (`Client.retry`), with the erred tasks
        they depend on; keys that are not erred are left alone."""
        self.lifecycle.retry(keys)

    def move_task(self, ts: TaskRecord, ws: WorkerRecord | None) -> None:
        """Work stealing: `ts` left its worker unstarted; run it on `ws` instead (placed
        afresh when `ws` is None, left or is retiring)."""
        self.books.unassign(ts)
        if (
            ws is not None
            and self.workers.get(ws.address) is ws
            and ws.address not in self.data_movement.retiring
        ):
            self.lifecycle.assign(ts, ws)
        else:
            self.lifecycle.set_state(ts, WAITING)
            self.lifecycle.make_ready(ts)

    # --- heartbeats, queries ----------------------------------------------------------

    def _on_story(self, cs: ClientRecord, msg: m.StoryRequest) -> None:
        """`Client.story`: the logged transitions of the keys asked for."""
        story = [list(entry) for entry in self.story.story(msg.keys)]
        self._send(cs.client_id, m.Reply(msg.request_id, story, None))

    def _on_heartbeat(self, ws: WorkerRecord, msg: m.WorkerHeartbeat) -> None:
        ws.heartbeat = msg
        ws.last_seen = self.clock()

    def ready_tasks(self) -> Iterator[TaskRecord]:
        """Tasks ready to run that no worker has yet: queued root tasks, then tasks that
        wait for a worker able to run them."""
        yield from (ts for ts in self.books.queue if ts.state == QUEUED)
        yield from self.no_worker

    def validate(self) -> None:
        """Check every invariant between records; raise AssertionError on the first broken.

        Costs a pass over all tasks and workers: for tests, not for production.
        """
        check_invariants(self)


def _ignore(cs: ClientRecord, msg: Any) -> None:
    """Handler of messages that only show the peer is alive (the actor noted that)."""
