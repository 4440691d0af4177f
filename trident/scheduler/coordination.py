"""`CoordinationState`: locks, semaphores, queues, variables, events and topics, sans-IO.

The scheduler's side of `trident.coordination`. `SchedulerState` routes the clients'
coordination messages here (`handlers`) and calls the hooks `client_removed`,
`task_ended` and `worker_removed`; replies go out through the `send` callable it is
given. Nothing here awaits or reads a clock: a request that must wait is parked as a
`Waiter` and answered when its condition holds, when the client withdraws it (its
timeout passed or its caller was cancelled), or when the task that made it ends.

Leases belong to their client and, when acquired inside a task, to that task and its
worker: a task that fails or is cancelled, a worker that leaves and a client that
disconnects give their leases back, so a crash never leaves a lock held forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol import messages as m
from .holds import KeyHolds
from .leases import LeaseRequest, LeaseTable
from .queues import QueueGetter, QueuePutter, QueueRecord
from .records import ClientRecord

Send = Callable[[str, Any], None]

LOCK = "lock"
SEMAPHORE = "semaphore"


class Stored:
    """A value the scheduler keeps, with the keys it holds alive for it."""

    __slots__ = ("held", "value")

    def __init__(self, value: m.StoredValue, held: list[str]):
        self.value = value
        self.held = held

    def wire(self) -> list[Any]:
        """``[payload, keys]`` as replies carry it."""
        return [self.value.payload, self.value.keys]


class Waiter:
    """A request that waits for an answer; `withdraw` undoes its waiting."""

    __slots__ = ("client_id", "request_id", "task", "withdraw")

    def __init__(self, client_id: str, request_id: int, task: str | None):
        self.client_id = client_id
        self.request_id = request_id
        self.task = task
        self.withdraw: Callable[[], None] = _nothing

    def __repr__(self) -> str:
        return f"<Waiter {self.client_id}#{self.request_id} task={self.task}>"


def _nothing() -> None:
    return None


class EventRecord:
    __slots__ = ("flag", "waiters")

    def __init__(self) -> None:
        self.flag = False
        self.waiters: list[Waiter] = []


class VariableRecord:
    __slots__ = ("value", "waiters")

    def __init__(self) -> None:
        self.value: Stored | None = None
        self.waiters: list[Waiter] = []


class CoordinationState:
    """Every coordination primitive of one scheduler (see the module docstring)."""

    def __init__(self, send: Send, holds: KeyHolds):
        self._send = send
        self._holds = holds
        self.leases = {LOCK: LeaseTable(LOCK), SEMAPHORE: LeaseTable(SEMAPHORE)}
        self.queues: dict[str, QueueRecord] = {}
        self.variables: dict[str, VariableRecord] = {}
        self.events: dict[str, EventRecord] = {}
        #: topic -> ids of the clients subscribed to it
        self.topics: dict[str, set[str]] = {}
        #: (client id, request id) -> waiting request
        self._pending: dict[tuple[str, int], Waiter] = {}
        self._task_waiters: dict[str, set[Waiter]] = {}
        #: task key -> leases it holds, as (table, lease id)
        self._task_leases: dict[str, list[tuple[LeaseTable, str]]] = {}
        #: lease id -> the waiter of a lease request not granted yet
        self._lease_waiters: dict[str, Waiter] = {}

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages this state handles, for `SchedulerState`."""
        return {
            m.AcquireLeases: self._on_acquire,
            m.ReleaseLease: self._on_release_lease,
            m.LeaseCount: self._on_lease_count,
            m.Withdraw: self._on_withdraw,
            m.HandoffsDone: self._on_handoffs_done,
            m.QueueCreate: self._on_queue_create,
            m.QueuePut: self._on_queue_put,
            m.QueueGet: self._on_queue_get,
            m.QueueSize: self._on_queue_size,
            m.QueueClose: self._on_queue_close,
            m.VariableSet: self._on_variable_set,
            m.VariableGet: self._on_variable_get,
            m.VariableDelete: self._on_variable_delete,
            m.EventSet: self._on_event_set,
            m.EventWait: self._on_event_wait,
            m.TopicSubscription: self._on_subscription,
            m.Publish: self._on_publish,
        }

    # --- waiting and answering --------------------------------------------------------

    def _reply(self, client_id: str, request_id: int, value: Any) -> None:
        self._send(client_id, m.Reply(request_id, value, None))

    def _refuse(self, client_id: str, request_id: int, error: str) -> None:
        self._send(client_id, m.Reply(request_id, None, error))

    def _park(self, waiter: Waiter) -> None:
        self._pending[(waiter.client_id, waiter.request_id)] = waiter
        if waiter.task is not None:
            self._task_waiters.setdefault(waiter.task, set()).add(waiter)

    def _unpark(self, waiter: Waiter) -> bool:
        """Forget a parked waiter; False if it was answered already."""
        if self._pending.pop((waiter.client_id, waiter.request_id), None) is None:
            return False
        if waiter.task is not None:
            waiters = self._task_waiters.get(waiter.task)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._task_waiters[waiter.task]
        return True

    def _answer(self, waiter: Waiter, value: Any) -> None:
        if self._unpark(waiter):
            self._reply(waiter.client_id, waiter.request_id, value)

    def _expire(self, waiter: Waiter, *, reply: bool = True) -> None:
        """Stop a waiter (withdrawn, its task ended, its client left); answer None."""
        if not self._unpark(waiter):
            return
        waiter.withdraw()
        if reply:
            self._reply(waiter.client_id, waiter.request_id, None)

    def _on_withdraw(self, cs: ClientRecord, msg: m.Withdraw) -> None:
        waiter = self._pending.get((cs.client_id, msg.request_id))
        if waiter is not None:
            self._expire(waiter)

    def _on_handoffs_done(self, cs: ClientRecord, msg: m.HandoffsDone) -> None:
        self._holds.handoffs_done(cs.client_id, msg.handoffs)

    # --- hooks ---------------------------------------------------------------------------

    def client_away(self, client_id: str) -> None:
        """The client lost its connection (it may resume): its waits end unanswered (it
        failed them already); its leases and subscriptions stay until it is removed."""
        for waiter in [w for (cid, _), w in self._pending.items() if cid == client_id]:
            self._expire(waiter, reply=False)

    def client_removed(self, client_id: str) -> None:
        """The client left: its waits end unanswered, its leases and topics are dropped."""
        self.client_away(client_id)
        for table in self.leases.values():
            for req in [r for r in table.leases.values() if r.client_id == client_id]:
                self._release(table, req.lease)
        for topic, subscribers in list(self.topics.items()):
            subscribers.discard(client_id)
            if not subscribers:
                del self.topics[topic]

    def task_ended(self, key: str) -> None:
        """Task `key` failed, was cancelled or lost its worker: end its leases and waits."""
        if key in self._task_leases:
            for table, lease in self._task_leases.pop(key):
                self._release(table, lease)
        waiters = self._task_waiters.get(key)
        if waiters:
            for waiter in list(waiters):
                self._expire(waiter)

    def worker_removed(self, address: str) -> None:
        """A worker left: leases taken by anything that ran there are released."""
        for table in self.leases.values():
            for req in [r for r in table.leases.values() if r.worker == address]:
                self._release(table, req.lease)

    # --- leases: Lock, MultiLock, Semaphore ------------------------------------------------

    def _on_acquire(self, cs: ClientRecord, msg: m.AcquireLeases) -> None:
        table = self.leases.get(msg.kind)
        if table is None:
            self._refuse(cs.client_id, msg.request_id, f"unknown lease kind {msg.kind!r}")
            return
        req = LeaseRequest(
            cs.client_id,
            msg.request_id,
            msg.lease,
            list(msg.names),
            msg.count,
            msg.max_leases,
            msg.task,
            msg.worker,
        )
        waiter = Waiter(cs.client_id, msg.request_id, msg.task)
        try:
            granted = table.request(req)
        except (ValueError, KeyError) as exc:
            self._refuse(cs.client_id, msg.request_id, str(exc).strip("'\""))
            return
        self._park(waiter)
        self._lease_waiters[req.lease] = waiter

        def withdraw() -> None:
            self._lease_waiters.pop(req.lease, None)
            self._granted(table, table.withdraw(req))

        waiter.withdraw = withdraw
        self._granted(table, granted)

    def _granted(self, table: LeaseTable, granted: list[LeaseRequest]) -> None:
        for req in granted:
            if req.task is not None:
                self._task_leases.setdefault(req.task, []).append((table, req.lease))
            waiter = self._lease_waiters.pop(req.lease, None)
            if waiter is not None:
                self._answer(waiter, True)

    def _release(self, table: LeaseTable, lease: str) -> None:
        req, granted = table.release(lease)
        if req is not None and req.task is not None:
            held = self._task_leases.get(req.task)
            if held is not None:
                held[:] = [entry for entry in held if entry[1] != lease]
                if not held:
                    del self._task_leases[req.task]
        self._granted(table, granted)

    def _on_release_lease(self, cs: ClientRecord, msg: m.ReleaseLease) -> None:
        table = self.leases.get(msg.kind)
        if table is None:
            return
        req = table.leases.get(msg.lease)
        if req is not None and req.client_id == cs.client_id:
            self._release(table, msg.lease)

    def _on_lease_count(self, cs: ClientRecord, msg: m.LeaseCount) -> None:
        table = self.leases.get(msg.kind)
        count = table.held(msg.name) if table is not None else 0
        self._reply(cs.client_id, msg.request_id, count)

    # --- queues -------------------------------------------------------------------------

    def _queue(self, name: str, maxsize: int = 0) -> QueueRecord:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = QueueRecord(name, maxsize)
        return queue

    def _store(self, value: m.StoredValue) -> Stored:
        return Stored(value, self._holds.hold(value.keys))

    def _on_queue_create(self, cs: ClientRecord, msg: m.QueueCreate) -> None:
        self._queue(msg.name, msg.maxsize)

    def _on_queue_put(self, cs: ClientRecord, msg: m.QueuePut) -> None:
        queue = self._queue(msg.name)
        items = [self._store(value) for value in msg.items]
        if msg.front:
            queue.put_back(items)
            self._reply(cs.client_id, msg.request_id, True)
        else:
            waiter = Waiter(cs.client_id, msg.request_id, msg.task)
            putter = QueuePutter(waiter, items)
            self._park(waiter)

            def withdraw() -> None:
                if putter in queue.putters:
                    queue.putters.remove(putter)
                    for item in putter.items:
                        self._holds.release(item.held)

            waiter.withdraw = withdraw
            queue.putters.append(putter)
        self._settle(queue)

    def _on_queue_get(self, cs: ClientRecord, msg: m.QueueGet) -> None:
        queue = self._queue(msg.name)
        if msg.batch < 0:
            taken = self._hand_over(cs.client_id, queue.take_all())
            self._reply(cs.client_id, msg.request_id, taken)
            self._settle(queue)
            return
        waiter = Waiter(cs.client_id, msg.request_id, msg.task)
        getter = QueueGetter(waiter, msg.batch)
        self._park(waiter)

        def withdraw() -> None:
            if getter in queue.getters:
                queue.getters.remove(getter)
                self._settle(queue)

        waiter.withdraw = withdraw
        queue.getters.append(getter)
        self._settle(queue)

    def _hand_over(self, client_id: str, items: list[Stored]) -> list[Any]:
        """The reply value for taken items: ``[[payload, keys], ...], handoff``."""
        held = [key for item in items for key in item.held]
        return [[item.wire() for item in items], self._holds.hand_off(client_id, held)]

    def _settle(self, queue: QueueRecord) -> None:
        served, admitted = queue.settle()
        for getter, items in served:
            # Withdrawn getters leave the queue first, so every served one is parked.
            waiter = getter.waiter
            self._unpark(waiter)
            taken = self._hand_over(waiter.client_id, items)
            self._reply(waiter.client_id, waiter.request_id, taken)
        for putter in admitted:
            self._answer(putter.waiter, True)

    def _on_queue_size(self, cs: ClientRecord, msg: m.QueueSize) -> None:
        queue = self.queues.get(msg.name)
        self._reply(cs.client_id, msg.request_id, len(queue.items) if queue is not None else 0)

    def _on_queue_close(self, cs: ClientRecord, msg: m.QueueClose) -> None:
        queue = self.queues.pop(msg.name, None)
        if queue is None:
            return
        reason = f"the queue {msg.name!r} was closed"
        for waiter in [g.waiter for g in queue.getters] + [p.waiter for p in queue.putters]:
            if self._unpark(waiter):
                self._refuse(waiter.client_id, waiter.request_id, reason)
        for putter in queue.putters:
            for item in putter.items:
                self._holds.release(item.held)
        for item in queue.items:
            self._holds.release(item.held)

    # --- variables ------------------------------------------------------------------------

    def _on_variable_set(self, cs: ClientRecord, msg: m.VariableSet) -> None:
        variable = self.variables.get(msg.name)
        if variable is None:
            variable = self.variables[msg.name] = VariableRecord()
        old, variable.value = variable.value, self._store(msg.value)
        if old is not None:
            self._holds.release(old.held)
        self._reply(cs.client_id, msg.request_id, True)
        waiters, variable.waiters = variable.waiters, []
        for waiter in waiters:
            self._answer(waiter, self._variable_reply(waiter.client_id, variable.value))

    def _variable_reply(self, client_id: str, stored: Stored) -> list[Any]:
        """``[payload, keys, handoff]``: the client gets holds of its own on the keys."""
        return [*stored.wire(), self._holds.hand_off_copy(client_id, stored.held)]

    def _on_variable_get(self, cs: ClientRecord, msg: m.VariableGet) -> None:
        variable = self.variables.get(msg.name)
        if variable is not None and variable.value is not None:
            self._reply(
                cs.client_id, msg.request_id, self._variable_reply(cs.client_id, variable.value)
            )
            return
        if variable is None:
            variable = self.variables[msg.name] = VariableRecord()
        waiter = Waiter(cs.client_id, msg.request_id, msg.task)
        record = variable
        name = msg.name

        def withdraw() -> None:
            if waiter in record.waiters:
                record.waiters.remove(waiter)
            if record.value is None and not record.waiters and self.variables.get(name) is record:
                del self.variables[name]

        waiter.withdraw = withdraw
        self._park(waiter)
        variable.waiters.append(waiter)

    def _on_variable_delete(self, cs: ClientRecord, msg: m.VariableDelete) -> None:
        variable = self.variables.get(msg.name)
        if variable is None or variable.value is None:
            return
        old, variable.value = variable.value, None
        self._holds.release(old.held)
        if not variable.waiters:
            del self.variables[msg.name]

    # --- events ---------------------------------------------------------------------------

    def _on_event_set(self, cs: ClientRecord, msg: m.EventSet) -> None:
        event = self.events.get(msg.name)
        if msg.flag:
            if event is None:
                event = self.events[msg.name] = EventRecord()
            event.flag = True
            waiters, event.waiters = event.waiters, []
            for waiter in waiters:
                self._answer(waiter, True)
        elif event is not None:
            event.flag = False
            if not event.waiters:
                del self.events[msg.name]
        self._reply(cs.client_id, msg.request_id, None)

    def _on_event_wait(self, cs: ClientRecord, msg: m.EventWait) -> None:
        event = self.events.get(msg.name)
        if event is not None and event.flag:
            self._reply(cs.client_id, msg.request_id, True)
            return
        if event is None:
            event = self.events[msg.name] = EventRecord()
        waiter = Waiter(cs.client_id, msg.request_id, msg.task)
        record = event
        name = msg.name

        def withdraw() -> None:
            if waiter in record.waiters:
                record.waiters.remove(waiter)
            if not record.flag and not record.waiters and self.events.get(name) is record:
                del self.events[name]

        waiter.withdraw = withdraw
        self._park(waiter)
        event.waiters.append(waiter)

    # --- publish / subscribe ------------------------------------------------------------------

    def _on_subscription(self, cs: ClientRecord, msg: m.TopicSubscription) -> None:
        if msg.subscribed:
            self.topics.setdefault(msg.name, set()).add(cs.client_id)
            return
        subscribers = self.topics.get(msg.name)
        if subscribers is not None:
            subscribers.discard(cs.client_id)
            if not subscribers:
                del self.topics[msg.name]

    def _on_publish(self, cs: ClientRecord, msg: m.Publish) -> None:
        for client_id in self.topics.get(msg.name, ()):
            handoff = self._holds.hand_off_copy(client_id, msg.value.keys)
            self._send(client_id, m.Published(msg.name, msg.value, handoff))

    # --- invariants ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the indexes against the primitives (for tests)."""
        for table in self.leases.values():
            table.validate()
            for req in table.waiting:
                waiter = self._lease_waiters.get(req.lease)
                assert waiter is not None
                assert (req.client_id, req.request_id) in self._pending
        for key, held in self._task_leases.items():
            for table, lease in held:
                assert table.leases[lease].task == key
        for (client_id, request_id), waiter in self._pending.items():
            assert waiter.client_id == client_id
            assert waiter.request_id == request_id
            if waiter.task is not None:
                assert waiter in self._task_waiters[waiter.task]
        for queue in self.queues.values():
            assert not (queue.getters and len(queue.items) >= queue.getters[0].wants), queue.name
            assert not (queue.putters and not queue.full()), queue.name
        for event in self.events.values():
            assert event.flag or event.waiters
            assert not (event.flag and event.waiters)
        for variable in self.variables.values():
            assert variable.value is not None or variable.waiters
            assert not (variable.value is not None and variable.waiters)
