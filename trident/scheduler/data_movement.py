"""`DataMovement`: `replicate`, `rebalance` and `retire_workers`, sans-IO.

The scheduler plans which worker should hold a copy of which key and sends each target
one `AcquireReplicas`; the target fetches from the listed holders and answers with
`ReplicasAcquired`. Copies are then added to the books, and moves (`rebalance`) drop the
source's copy only once the target confirmed it holds the key, so data is never in
flight with no copy left. A request is answered once all its transfers are done.

Retiring workers copies the keys only they hold (their *unique* data) to the other
workers, checks again (tasks may have finished there meanwhile), and then removes them
from the cluster: the tasks they still ran are placed elsewhere (not counted as a
death), and each retired worker is told to stop. Actors are never copied or moved:
an actor on a retired worker follows its restart rules, as when its worker dies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..protocol import messages as m
from .inspection import select_workers
from .records import MEMORY, ClientRecord, TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from .state import SchedulerState

#: How often a retirement copies fresh unique data before it removes the workers anyway
#: (what is left then is recomputed from lineage, as after a worker death).
RETIRE_ROUNDS = 3
#: `workers_to_close` keeps workers whose memory limits add up to this many times the
#: bytes the cluster holds.
MEMORY_HEADROOM = 2.0


@attrs.define(eq=False)
class Operation:
    """One request that moves data: its transfers in flight and what to do after.

    `moves` maps ``(key, target)`` to the worker whose copy is dropped once the target
    holds the key. `retiring` lists the workers a retirement removes when done.
    """

    operation_id: int
    client_id: str | None
    request_id: int
    pending: set[str] = attrs.Factory(set)
    moves: dict[tuple[str, str], str] = attrs.Factory(dict)
    retiring: list[str] | None = None
    close: bool = False
    rounds: int = 0
    #: called with the retired workers' info when a retirement ends (in-process callers)
    on_done: Callable[[dict[str, Any]], None] | None = None


def movable(ts: TaskRecord) -> bool:
    """Whether the data of `ts` may be copied to other workers (actors stay put)."""
    return ts.state == MEMORY and ts.actor is None


def workers_to_close(
    workers: Mapping[str, WorkerRecord],
    n: int | None = None,
    *,
    exclude: Iterable[str] = (),
    keep: int = 1,
) -> list[WorkerRecord]:
    """Workers the cluster can spare: idle ones, holding the fewest bytes first.

    At least `keep` workers are kept, and enough that the memory limits of those kept
    cover `MEMORY_HEADROOM` times the bytes the cluster holds (when limits are known).
    `n` caps how many are returned; `exclude` names workers not to consider.
    """
    skip = set(exclude)
    active = [ws for ws in workers.values() if ws.address not in skip]
    idle = sorted(
        (ws for ws in active if not ws.processing and not ws.long_running),
        key=lambda ws: ws.nbytes,
    )
    limit = len(active) - keep if n is None else min(n, len(active) - keep)
    total_bytes = sum(ws.nbytes for ws in active)
    kept_memory = sum(ws.info.memory_limit for ws in active)
    chosen: list[WorkerRecord] = []
    for ws in idle:
        if len(chosen) >= limit:
            break
        if ws.info.memory_limit and total_bytes:
            if kept_memory - ws.info.memory_limit < MEMORY_HEADROOM * total_bytes:
                continue
            kept_memory -= ws.info.memory_limit
        chosen.append(ws)
    return chosen


def worker_summary(ws: WorkerRecord) -> dict[str, Any]:
    return {
        "name": ws.name,
        "nthreads": ws.nthreads,
        "memory_limit": ws.info.memory_limit,
        "nbytes": ws.nbytes,
    }


class DataMovement:
    """Copies, moves and retirements in progress (a part of `SchedulerState`)."""

    def __init__(self, state: SchedulerState, send: Callable[[str, Any], None]):
        self._state = state
        self._send = send
        self.operations: dict[int, Operation] = {}
        #: workers being retired: no copies go to them
        self.retiring: set[str] = set()
        #: workers already removed as retired whose connection has not closed yet
        self.retired: set[str] = set()
        self._ids = itertools.count(1)

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages handled here, for `SchedulerState`."""
        return {
            m.ReplicateRequest: self._on_replicate,
            m.RebalanceRequest: self._on_rebalance,
            m.RetireWorkersRequest: self._on_retire,
        }

    def _reply(self, op: Operation, value: Any, error: str | None = None) -> None:
        if op.client_id is not None and op.client_id in self._state.clients:
            self._send(op.client_id, m.Reply(op.request_id, value, error))

    def _new_operation(self, client_id: str | None, request_id: int) -> Operation:
        op = Operation(next(self._ids), client_id, request_id)
        self.operations[op.operation_id] = op
        return op

    def _targets(self, names: list[str] | None) -> list[WorkerRecord]:
        return [
            ws
            for ws in select_workers(self._state.workers, names)
            if ws.address not in self.retiring
        ]

    # --- replicate ---------------------------------------------------------------------

    def _on_replicate(self, cs: ClientRecord, msg: m.ReplicateRequest) -> None:
        op = self._new_operation(cs.client_id, msg.request_id)
        pool = self._targets(msg.workers)
        plan: dict[str, dict[str, list[str]]] = {}
        tasks = self._state.tasks
        for key in msg.keys:
            ts = tasks.get(key)
            if ts is None or not movable(ts):
                continue
            holders = [ws for ws in pool if ws in ts.who_has]
            want = len(pool) if msg.n is None else min(max(msg.n, 1), len(pool))
            if len(holders) < want:
                others = sorted((ws for ws in pool if ws not in ts.who_has), key=_load)
                sources = [ws.address for ws in ts.who_has]
                for ws in others[: want - len(holders)]:
                    plan.setdefault(ws.address, {})[key] = sources
            elif len(holders) > want:
                for ws in sorted(holders, key=_load, reverse=True)[: len(holders) - want]:
                    if len(ts.who_has) > 1:
                        self._state.drop_replica(ts, ws)
        self._start(op, plan)

    # --- rebalance ---------------------------------------------------------------------

    def _on_rebalance(self, cs: ClientRecord, msg: m.RebalanceRequest) -> None:
        op = self._new_operation(cs.client_id, msg.request_id)
        pool = self._targets(msg.workers)
        if msg.keys is None:
            chosen = {ts for ws in pool for ts in ws.has_what if movable(ts)}
        else:
            tasks = self._state.tasks
            chosen = {tasks[key] for key in msg.keys if key in tasks and movable(tasks[key])}
        plan: dict[str, dict[str, list[str]]] = {}
        for ts, source, target in plan_rebalance(pool, chosen):
            plan.setdefault(target.address, {})[ts.key] = [source.address]
            op.moves[(ts.key, target.address)] = source.address
        self._start(op, plan)

    # --- retire ------------------------------------------------------------------------

    def _on_retire(self, cs: ClientRecord, msg: m.RetireWorkersRequest) -> None:
        if msg.workers is None:
            chosen = workers_to_close(self._state.workers, exclude=self.retiring)
        else:
            chosen = self._targets(msg.workers)
        addresses = [ws.address for ws in chosen]
        self.retire(addresses, close=msg.close, client_id=cs.client_id, request_id=msg.request_id)

    def retire(
        self,
        addresses: list[str],
        *,
        close: bool,
        client_id: str | None = None,
        request_id: int = 0,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Retire the workers at `addresses` (see the module docstring).

        Answers the client `client_id` (if any) and calls `on_done` with ``{address:
        info}`` of the retired workers once they are removed.
        """
        op = self._new_operation(client_id, request_id)
        op.retiring = [a for a in addresses if a in self._state.workers and a not in self.retiring]
        op.close = close
        op.on_done = on_done
        self.retiring.update(op.retiring)
        self._retire_round(op)

    def on_worker_retiring(self, ws: WorkerRecord, msg: m.WorkerRetiring) -> None:
        """A worker's lifetime is over: retire it and close it (its nanny too). Its
        leaving is not optional (its batch job is about to end), so when its data has
        nowhere to go it is closed all the same and that data is recomputed later."""
        address = ws.address
        if address in self.retiring:
            return  # already leaving

        def closed_anyway(retired: dict[str, Any]) -> None:
            if address not in retired and address in self._state.workers:
                self._send(address, m.CloseWorker(f"lifetime over: {msg.reason}"))
                nanny = self._state.nannies.nanny_of().get(address)
                if nanny is not None:
                    self._send(nanny, m.CloseWorker(f"lifetime over: {msg.reason}"))

        self.retire([address], close=True, on_done=closed_anyway)

    def _retire_round(self, op: Operation) -> None:
        assert op.retiring is not None
        leaving = set(op.retiring)
        workers = self._state.workers
        receivers = [ws for a, ws in workers.items() if a not in self.retiring]
        unique: dict[TaskRecord, None] = {}
        for address in op.retiring:
            for ts in workers[address].has_what:
                if movable(ts) and all(ws.address in leaving for ws in ts.who_has):
                    unique[ts] = None
        if not unique or op.rounds >= RETIRE_ROUNDS:
            self._finish_retirement(op)
            return
        if not receivers:
            self._end_retirement(op)
            error = "cannot retire every worker: the data only they hold has nowhere to go"
            self._reply(op, None, error)
            if op.on_done is not None:
                op.on_done({})
            return
        op.rounds += 1
        loads = {ws: ws.nbytes for ws in receivers}
        plan: dict[str, dict[str, list[str]]] = {}
        for ts in sorted(unique, key=lambda ts: -ts.nbytes):
            target = min(loads, key=loads.__getitem__)
            loads[target] += ts.nbytes
            plan.setdefault(target.address, {})[ts.key] = [ws.address for ws in ts.who_has]
        self._send_plan(op, plan)

    def _finish_retirement(self, op: Operation) -> None:
        assert op.retiring is not None
        addresses = list(op.retiring)
        self._end_retirement(op)  # before the removals, whose hooks would change it
        state = self._state
        nanny_of = state.nannies.nanny_of()
        retired = {}
        for address in addresses:
            ws = state.workers.get(address)
            if ws is None:
                continue
            retired[address] = worker_summary(ws)
            state.remove_worker(address, "retired", graceful=True)
            self.retired.add(address)
            self._send(address, m.CloseWorker("retired"))
            nanny = nanny_of.get(address)
            if op.close and nanny is not None:
                self._send(nanny, m.CloseWorker("retired"))
        self._reply(op, retired)
        if op.on_done is not None:
            op.on_done(retired)

    def _end_retirement(self, op: Operation) -> None:
        self.operations.pop(op.operation_id, None)
        self.retiring.difference_update(op.retiring or ())

    # --- transfers -----------------------------------------------------------------------

    def _start(self, op: Operation, plan: dict[str, dict[str, list[str]]]) -> None:
        self._send_plan(op, plan)
        if not op.pending:
            self._done(op)

    def _send_plan(self, op: Operation, plan: dict[str, dict[str, list[str]]]) -> None:
        for target, who_has in plan.items():
            op.pending.add(target)
            self._send(target, m.AcquireReplicas(op.operation_id, who_has))

    def on_replicas_acquired(self, ws: WorkerRecord, msg: m.ReplicasAcquired) -> None:
        """A worker fetched the copies it was asked for."""
        state = self._state
        op = self.operations.get(msg.operation)
        for key, nbytes in msg.nbytes.items():
            ts = state.tasks.get(key)
            if ts is None or ts.state != MEMORY:
                self._send(ws.address, m.FreeKeys([key]))
                continue
            state.add_replica(ts, ws, nbytes)
            source_address = op.moves.pop((key, ws.address), None) if op is not None else None
            source = state.workers.get(source_address) if source_address else None
            # A target that started retiring meanwhile is no safe home: keep the source.
            if (
                source is not None
                and source in ts.who_has
                and len(ts.who_has) > 1
                and ws.address not in self.retiring
            ):
                state.drop_replica(ts, source)
        if op is not None:
            op.pending.discard(ws.address)
            if not op.pending:
                self._done(op)

    def _done(self, op: Operation) -> None:
        if op.retiring is not None:
            self._retire_round(op)
        else:
            self.operations.pop(op.operation_id, None)
            self._reply(op, None)

    # --- hooks ---------------------------------------------------------------------------

    def worker_removed(self, address: str) -> None:
        """A worker left: transfers to it are over, and it retires no more."""
        for op in list(self.operations.values()):
            if op.retiring is not None and address in op.retiring:
                op.retiring.remove(address)
                self.retiring.discard(address)
            if address in op.pending:
                op.pending.discard(address)
                if not op.pending:
                    self._done(op)

    def connection_closed(self, address: str) -> None:
        """The connection of a retired worker closed."""
        self.retired.discard(address)

    def client_removed(self, client_id: str) -> None:
        """Operations of a client that left go on; nobody is answered."""
        for op in self.operations.values():
            if op.client_id == client_id:
                op.client_id = None

    def validate(self) -> None:
        workers = self._state.workers
        for op in self.operations.values():
            assert op.pending <= workers.keys(), op
            if op.retiring is not None:
                assert set(op.retiring) <= self.retiring, op
        assert self.retiring <= workers.keys(), self.retiring


def _load(ws: WorkerRecord) -> int:
    return ws.nbytes


def plan_rebalance(
    pool: list[WorkerRecord], chosen: set[TaskRecord]
) -> list[tuple[TaskRecord, WorkerRecord, WorkerRecord]]:
    """Moves ``(task, from, to)`` that even out the bytes of `chosen` keys over `pool`.

    Greedy: the heaviest worker gives its largest key to the lightest worker lacking it,
    while that narrows the gap between them.
    """
    if len(pool) < 2 or not chosen:
        return []
    members = set(pool)
    loads = {ws: 0 for ws in pool}
    holdings: dict[WorkerRecord, list[TaskRecord]] = {ws: [] for ws in pool}
    for ts in chosen:
        for ws in ts.who_has:
            if ws in members:
                loads[ws] += ts.nbytes
                holdings[ws].append(ts)
    for keys in holdings.values():
        keys.sort(key=lambda ts: ts.nbytes)
    moves: list[tuple[TaskRecord, WorkerRecord, WorkerRecord]] = []
    placed: set[tuple[TaskRecord, WorkerRecord]] = set()
    while True:
        sender = max(pool, key=loads.__getitem__)
        receiver = min(pool, key=loads.__getitem__)
        gap = loads[sender] - loads[receiver]
        candidates = holdings[sender]
        found = None
        for i in range(len(candidates) - 1, -1, -1):
            ts = candidates[i]
            if 0 < ts.nbytes < gap and receiver not in ts.who_has and (ts, receiver) not in placed:
                found = i
                break
        if found is None:
            return moves
        ts = candidates.pop(found)
        moves.append((ts, sender, receiver))
        placed.add((ts, receiver))
        loads[sender] -= ts.nbytes
        loads[receiver] += ts.nbytes
