"""`TaskLifecycle`: every transition of a task between states, sans-IO.

States (see `records`)::

    released -> waiting -> (queued | no-worker) -> processing -> memory
                                                            \\-> erred

`compute` brings a task towards memory, recomputing released inputs first (lineage);
a task whose inputs are all in memory is ready (`make_ready`): a root task is queued
for `Assignments`, any other goes to the worker `choose_worker` picks, or waits as
`no-worker` until one that may run it joins. Workers report results, failures and lost
inputs (the `worker_handlers`); clients that stop wanting a task let it go
(`check_release`): its work stops and its data is freed as soon as no client wants it
and no unfinished dependent needs it, and it is forgotten (`maybe_forget`) once no
record depends on it either. When the last copy of a task's data is lost, `data_lost`
recomputes it if anyone still needs it; data that cannot be recomputed is awaited a
while from a worker that may come back (`lost_data`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import ActorDied, FutureLostError
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from .activity import FAILED, OK, Activity
from .assignment import Assignments
from .functions import FunctionStore
from .placement import DurationEstimates, choose_worker
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

if TYPE_CHECKING:
    from .lost_data import LostData
    from .story import TaskStory


class TaskLifecycle:
    """Task transitions over the scheduler's records, and the count of them.

    Arguments:
        tasks: the scheduler's tasks by key (shared; tasks are forgotten here).
        workers: the scheduler's workers by address (read only).
        books: the queue and the workers' processing books.
        functions: the function store (tasks hold a reference to their function).
        durations: estimated seconds and output bytes per task prefix (learnt from results
            here).
        activity: where task runs and errors are recorded.
        fire_and_forget: the pseudo-client that wants fire-and-forget keys; it lets
            go of a key once the key has an outcome and is never sent messages.
        task_ended: called with a key whose run ended or was stopped (coordination
            leases end with it).
        send: queues a message for a peer.
        send_key: queues a per-key worker message (`Outbox.send_key`).
        clock: wall-clock seconds.
        stalled: workers gone quiet (`WorkerStalls.stalled`, read only): ready tasks
            go to them only when no other worker may run them.
        lost_data: keys awaited from departed workers that may come back.
        story: the log every state change goes through (`TaskStory.transition`).
    """

    def __init__(
        self,
        tasks: dict[str, TaskRecord],
        workers: Mapping[str, WorkerRecord],
        books: Assignments,
        functions: FunctionStore,
        durations: DurationEstimates,
        activity: Activity,
        fire_and_forget: ClientRecord,
        task_ended: Callable[[str], None],
        send: Callable[[str, Any], None],
        send_key: Callable[[str, type[m.FreeKeys] | type[m.CancelTask], str], None],
        clock: Callable[[], float],
        stalled: Collection[WorkerRecord],
        lost_data: LostData,
        story: TaskStory,
    ) -> None:
        self._tasks = tasks
        self._workers = workers
        self._books = books
        self._functions = functions
        self._durations = durations
        self._activity = activity
        self._fire_and_forget = fire_and_forget
        self._task_ended = task_ended
        self._send = send
        self._send_key = send_key
        self._clock = clock
        self._stalled = stalled
        self._lost_data = lost_data
        self._story = story
        #: sets a task's state and logs it (`TaskStory.transition`)
        self.set_state = story.transition
        #: how many transitions happened so far
        self.transitions = 0
        #: ready tasks that no connected worker may run
        self.no_worker: dict[TaskRecord, None] = {}
        #: client id -> keys that went to no-worker since the last flush (see flush)
        self._no_worker_news: defaultdict[str, list[str]] = defaultdict(list)
        self._retrying_no_worker = False

    def worker_handlers(self) -> dict[type, Callable[[WorkerRecord, Any], None]]:
        return {
            m.TaskFinished: self._on_task_finished,
            m.TaskFailed: self._on_task_failed,
            m.MissingData: self._on_missing_data,
            m.KeysReleased: self._on_keys_released,
            m.TaskSeceded: self._on_task_seceded,
            m.TaskRescheduled: self._on_task_rescheduled,
        }

    # --- towards memory -----------------------------------------------------------------

    def compute(self, root: TaskRecord) -> None:
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
            if ts in self._lost_data:
                return  # awaited from a worker that may come back
            self.fail(
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
                self.fail(ts, dep.error)
                return
        self.set_state(ts, WAITING)
        self.transitions += 1
        for dep in ts.dependencies:
            dep.add_waiter(ts)
            if dep.state != MEMORY:
                ts.waiting_count += 1
        if not ts.waiting_count:
            self.make_ready(ts)

    def make_ready(self, ts: TaskRecord) -> None:
        """All inputs are in memory: queue the task or send it to a worker."""
        if ts.is_root:
            self.set_state(ts, QUEUED)
            self._books.enqueue(ts)
            return
        ws = choose_worker(ts, self._workers, self._books.idle, self._clock(), self._stalled)
        if ws is None:
            self.set_state(ts, NO_WORKER)
            self.no_worker[ts] = None
            if self._workers and not self._retrying_no_worker:
                self._tell_no_worker(ts)
        else:
            self.assign(ts, ws)

    def assign(self, ts: TaskRecord, ws: WorkerRecord) -> None:
        """Send `ts` to `ws` now (it becomes `processing`)."""
        self.transitions += 1
        self._books.assign(ts, ws)

    def schedule_queued(self) -> None:
        """Hand queued root tasks to the workers with room (`Assignments.schedule_queued`)."""
        self.transitions += self._books.schedule_queued()

    def _tell_no_worker(self, ts: TaskRecord) -> None:
        """Workers are connected but none may run `ts`: tell the clients that want it
        (or its dependents), once, in one `KeysWithoutWorker` per client and flush."""
        clients = set(ts.who_wants)
        for dependent in ts.dependents:
            clients.update(dependent.who_wants)
        for cs in clients:
            self._no_worker_news[cs.client_id].append(ts.key)

    def send_no_worker_news(self) -> None:
        """Send each client the keys that went to no-worker since the last call."""
        if self._no_worker_news:
            for client_id, keys in self._no_worker_news.items():
                self._send(client_id, m.KeysWithoutWorker(keys))
            self._no_worker_news.clear()

    def retry_no_worker(self) -> None:
        """A worker joined: place the tasks that waited for one again (their clients
        were told already, so they are not told again should they still wait)."""
        self._retrying_no_worker = True
        try:
            for ts in list(self.no_worker):
                del self.no_worker[ts]
                self.compute(ts)
        finally:
            self._retrying_no_worker = False

    def retry(self, keys: list[str]) -> None:
        """Run the erred tasks among `keys` again (`Client.retry`), with the erred tasks
        they depend on; keys that are not erred are left alone."""
        erred: list[TaskRecord] = []
        seen: set[TaskRecord] = set()
        stack = [ts for key in keys if (ts := self._tasks.get(key)) is not None]
        roots = [ts for ts in stack if ts.state == ERRED]
        while stack:
            ts = stack.pop()
            if ts in seen or ts.state != ERRED:
                continue
            seen.add(ts)
            erred.append(ts)
            stack.extend(ts.dependencies)
        for ts in erred:
            self.set_state(ts, RELEASED)
            ts.error = None
            self.transitions += 1
        for ts in roots:
            if ts.state == RELEASED:
                self.compute(ts)

    def want(self, cs: ClientRecord, ts: TaskRecord) -> None:
        """`cs` now wants an existing task: report its outcome if it already has one."""
        cs.wants.add(ts)
        ts.add_wanter(cs)
        if ts.state == MEMORY:
            self._send(cs.client_id, m.KeyDone(ts.key, ts.type_name, ts.nbytes, None))
        elif ts.state == ERRED:
            assert ts.error is not None
            self._send(cs.client_id, m.KeyErred(ts.key, ts.error))
        elif ts.state == RELEASED:
            self.compute(ts)

    # --- results --------------------------------------------------------------------------

    def _on_task_finished(self, ws: WorkerRecord, msg: m.TaskFinished) -> None:
        ts = self._tasks.get(msg.key)
        if ts is None or ts.state != PROCESSING or ts.processing_on is not ws:
            if ts is not None and ts.state == MEMORY:
                self.add_replica(ts, ws, msg.nbytes)
            else:
                self._send_key(ws.address, m.FreeKeys, msg.key)
            return
        self._books.unassign(ts)
        self._durations.observe(ts.prefix, msg.stop - msg.start, msg.nbytes)
        self._activity.task_ran(ts.key, ts.prefix, ws.address, msg.start, msg.stop, OK)
        self.set_state(ts, MEMORY)
        self.transitions += 1
        ts.type_name = msg.type_name
        self.add_replica(ts, ws, msg.nbytes)
        if ts.who_wants:
            done = m.KeyDone(ts.key, msg.type_name, msg.nbytes, msg.value)
            for cs in list(ts.who_wants):
                if cs is self._fire_and_forget:
                    self.unwant(cs, ts)
                else:
                    self._send(cs.client_id, done)
        for dep in ts.dependencies:
            dep.waiters.discard(ts)
            self.check_release(dep)
        for dependent in ts.dependents:
            # A waiting dependent counted this input: it was not in memory then.
            if dependent.state == WAITING:
                dependent.waiting_count -= 1
                if not dependent.waiting_count:
                    self.make_ready(dependent)
        self.check_release(ts)

    def add_replica(self, ts: TaskRecord, ws: WorkerRecord, nbytes: int) -> None:
        """`ws` holds a copy of `ts` (in memory) now."""
        if ws not in ts.who_has:
            ts.add_holder(ws)
            ws.has_what[ts] = None
            ws.nbytes += nbytes
        ts.nbytes = nbytes

    def drop_replica(self, ts: TaskRecord, ws: WorkerRecord) -> None:
        """Tell `ws` to drop its copy of `ts`; the data is lost if it was the last one."""
        if ts not in ws.has_what:
            return
        del ws.has_what[ts]
        ws.nbytes -= ts.nbytes
        ts.who_has.discard(ws)
        self._send_key(ws.address, m.FreeKeys, ts.key)
        if not ts.who_has:
            self.data_lost(ts)

    def _on_task_failed(self, ws: WorkerRecord, msg: m.TaskFailed) -> None:
        ts = self._tasks.get(msg.key)
        if ts is None or ts.state != PROCESSING or ts.processing_on is not ws:
            return
        self._books.unassign(ts)
        self._task_ended(ts.key)
        self._activity.task_ran(ts.key, ts.prefix, ws.address, msg.start, msg.stop, FAILED)
        if ts.retries > 0:
            ts.retries -= 1
            self.set_state(ts, WAITING)
            self.make_ready(ts)
            return
        self.fail(ts, msg.error, record=True)

    def _on_task_seceded(self, ws: WorkerRecord, msg: m.TaskSeceded) -> None:
        """The task left its thread slot (`secede`): `ws` has room for another task."""
        ts = self._tasks.get(msg.key)
        if ts is None or ts.processing_on is not ws or ts not in ws.processing:
            return
        self._books.secede(ts, ws)

    def _on_task_rescheduled(self, ws: WorkerRecord, msg: m.TaskRescheduled) -> None:
        """The task raised `Reschedule`: place it again (maybe on another worker)."""
        ts = self._tasks.get(msg.key)
        if ts is None or ts.state != PROCESSING or ts.processing_on is not ws:
            return
        self._books.unassign(ts)
        self._task_ended(ts.key)
        self.set_state(ts, WAITING)
        self.make_ready(ts)

    def fail(self, ts: TaskRecord, error: m.ErrorInfo, *, record: bool = False) -> None:
        """Mark `ts` and every dependent that cannot finish without it as erred.

        `record` adds the error to `activity` (once, for the task that caused it).
        """
        if record:
            self._activity.error(self._clock(), ts.key, ts.prefix, error.worker, error.text)
        stack = [ts]
        while stack:
            task = stack.pop()
            if task.state in (ERRED, MEMORY):
                continue
            self.stop(task)
            self.set_state(task, ERRED)
            self.transitions += 1
            task.error = error
            for cs in list(task.who_wants):
                if cs is self._fire_and_forget:
                    self.unwant(cs, task)
                else:
                    self._send(cs.client_id, m.KeyErred(task.key, error))
            for dep in task.dependencies:
                dep.waiters.discard(task)
                self.check_release(dep)
            stack.extend(task.dependents)
            self.maybe_forget(task)

    def _on_missing_data(self, ws: WorkerRecord, msg: m.MissingData) -> None:
        """A worker could not fetch a dependency: fix `who_has` and try the task again."""
        dep = self._tasks.get(msg.dependency)
        if dep is not None:
            for address in msg.tried:
                holder = self._workers.get(address)
                if holder is not None and holder in dep.who_has:
                    dep.who_has.discard(holder)
                    holder.has_what.pop(dep, None)
            if dep.state == MEMORY and not dep.who_has:
                self.data_lost(dep)
        ts = self._tasks.get(msg.key)
        if ts is not None and ts.state == PROCESSING and ts.processing_on is ws:
            self._books.unassign(ts)
            self.compute(ts)

    def _on_keys_released(self, ws: WorkerRecord, msg: m.KeysReleased) -> None:
        for key in msg.keys:
            ts = self._tasks.get(key)
            if ts is not None and ws in ts.who_has:
                ts.who_has.discard(ws)
                ws.has_what.pop(ts, None)
                if ts.state == MEMORY and not ts.who_has:
                    self.data_lost(ts)

    def data_lost(self, ts: TaskRecord, returning: str | None = None) -> None:
        """The last copy of `ts` is gone: recompute it if needed, else just release it.

        Data that cannot be recomputed is awaited from the worker at `returning`, when
        given, before it fails (`lost_data`).
        """
        self.set_state(ts, RELEASED)
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
                self.fail(ts, error_info_for(ActorDied(reason)))
                return
            ts.restarts += 1
        if ts.function is None:
            if (ts.who_wants or ts.waiters) and not (
                returning is not None and self._lost_data.park(ts, returning)
            ):
                self.fail(
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
            self.compute(ts)
        else:
            self.maybe_forget(ts)

    # --- releasing --------------------------------------------------------------------

    def unwant(self, cs: ClientRecord, ts: TaskRecord) -> None:
        """`cs` no longer wants `ts` (follow with `check_release`)."""
        cs.wants.discard(ts)
        ts.who_wants.discard(cs)

    def check_release(self, ts: TaskRecord) -> None:
        """Drop work and data that no client wants and no unfinished dependent needs."""
        if ts.who_wants or ts.waiters:
            return
        if ts.state == MEMORY:
            self._release_data(ts)
        elif ts.state in (WAITING, QUEUED, NO_WORKER, PROCESSING):
            self.stop(ts)
            self.set_state(ts, RELEASED)
            self.transitions += 1
            for dep in ts.dependencies:
                dep.waiters.discard(ts)
                self.check_release(dep)
        self.maybe_forget(ts)

    def stop(self, ts: TaskRecord) -> None:
        """Undo scheduling of a task that will not run after all."""
        if ts.state == PROCESSING:
            ws = self._books.unassign(ts)
            if ws is not None:
                self._send_key(ws.address, m.CancelTask, ts.key)
            self._task_ended(ts.key)
        elif ts.state == NO_WORKER:
            self.no_worker.pop(ts, None)
        ts.waiting_count = 0

    def _release_data(self, ts: TaskRecord) -> None:
        for ws in ts.who_has:
            ws.has_what.pop(ts, None)
            ws.nbytes -= ts.nbytes
            self._send_key(ws.address, m.FreeKeys, ts.key)
        ts.who_has = EMPTY
        self.set_state(ts, RELEASED)
        self.transitions += 1

    def maybe_forget(self, ts: TaskRecord) -> None:
        """Forget a task nobody wants and nothing depends on, then its orphaned inputs."""
        tasks = self._tasks
        stack = [ts]
        while stack:
            task = stack.pop()
            if task.who_wants or task.dependents or task.key not in tasks:
                continue
            if task.state == MEMORY:
                if task.waiters:
                    continue
                self._release_data(task)
            elif task.state not in (RELEASED, ERRED):
                continue
            self._story.forgotten(task)
            del tasks[task.key]
            if task.function is not None:
                self._functions.unref(task.function)
            for dep in task.dependencies:
                dep.dependents.discard(task)
                dep.waiters.discard(task)
                if dep.state == MEMORY and not dep.waiters and not dep.who_wants:
                    self._release_data(dep)
                stack.append(dep)
