"""`ClusterDumps`: `Client.dump_cluster_state`, the scheduler's side, sans-IO.

The scheduler describes its own state when the request arrives (`describe_scheduler`),
asks every connected worker for its state (`DumpWorkerState`), and answers the client
with one `Reply` once every one of them answered (`WorkerStateDumped`) or left. All of
it is plain data (strings, numbers, lists, dicts): task values and payloads are never
included, only their sizes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import attrs

from .._eventlog import as_records
from ..protocol import messages as m
from .records import ClientRecord, TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from .state import SchedulerState


def describe_task(ts: TaskRecord, exclude: Collection[str] = ()) -> dict[str, Any]:
    """One task's record; fields named in `exclude` are left out."""
    record = {
        "key": ts.key,
        "state": ts.state,
        "priority": ts.priority,
        "dependencies": [dep.key for dep in ts.dependencies],
        "dependents": sorted(dep.key for dep in ts.dependents),
        "waiters": sorted(dep.key for dep in ts.waiters),
        "who_has": sorted(ws.address for ws in ts.who_has),
        "who_wants": sorted(cs.client_id for cs in ts.who_wants),
        "processing_on": ts.processing_on.address if ts.processing_on is not None else None,
        "nbytes": ts.nbytes,
        "type": ts.type_name,
        "retries": ts.retries,
        "workers_died": list(ts.workers_died or ()),
        "suspicious": ts.suspicious,
    }
    for name in exclude:
        record.pop(name, None)
    return record


def describe_worker(ws: WorkerRecord) -> dict[str, Any]:
    return {
        "address": ws.address,
        "name": ws.name,
        "nthreads": ws.nthreads,
        "processing": [ts.key for ts in ws.processing],
        "long_running": [ts.key for ts in ws.long_running],
        "has_what": [ts.key for ts in ws.has_what],
        "occupancy": ws.occupancy,
        "nbytes": ws.nbytes,
        "resources_free": dict(ws.resources_free),
        "last_seen": ws.last_seen,
    }


def describe_client(cs: ClientRecord) -> dict[str, Any]:
    return {"client_id": cs.client_id, "name": cs.name, "wants": sorted(t.key for t in cs.wants)}


def describe_scheduler(state: SchedulerState, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The scheduler's tasks, workers, clients and recent events (its log, oldest first)."""
    return {
        "id": state.id,
        "time": state.clock(),
        "transitions": state.transitions,
        "tasks": {key: describe_task(ts, exclude) for key, ts in state.tasks.items()},
        "workers": {address: describe_worker(ws) for address, ws in state.workers.items()},
        "clients": {client_id: describe_client(cs) for client_id, cs in state.clients.items()},
        "log": as_records(state.log),
    }


@attrs.define(eq=False)
class PendingDump:
    """A `DumpClusterState` waiting for its workers' states."""

    client_id: str
    request_id: int
    scheduler: dict[str, Any]
    waiting: set[str]
    workers: dict[str, Any] = attrs.Factory(dict)


class ClusterDumps:
    """Dumps of the whole cluster's state in progress."""

    def __init__(self, state: SchedulerState, send: Callable[[str, Any], None]):
        self._state = state
        self._send = send
        self.pending: dict[int, PendingDump] = {}
        self._ids = itertools.count(1)

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages answered here, for `SchedulerState`."""
        return {m.DumpClusterState: self._on_request}

    def _on_request(self, cs: ClientRecord, msg: m.DumpClusterState) -> None:
        state = self._state
        dump = next(self._ids)
        scheduler = describe_scheduler(state, msg.exclude)
        pending = PendingDump(cs.client_id, msg.request_id, scheduler, set(state.workers))
        self.pending[dump] = pending
        for address in pending.waiting:
            self._send(address, m.DumpWorkerState(dump, msg.exclude))
        self._finish(dump)

    def on_worker_dumped(self, ws: WorkerRecord, msg: m.WorkerStateDumped) -> None:
        pending = self.pending.get(msg.dump)
        if pending is None or ws.address not in pending.waiting:
            return
        pending.waiting.discard(ws.address)
        pending.workers[ws.address] = msg.state
        self._finish(msg.dump)

    def _finish(self, dump: int) -> None:
        pending = self.pending[dump]
        if pending.waiting:
            return
        del self.pending[dump]
        value = {"scheduler": pending.scheduler, "workers": pending.workers}
        self._send(pending.client_id, m.Reply(pending.request_id, value, None))

    def worker_removed(self, address: str) -> None:
        """A worker left: the dumps waiting for it go on without its state."""
        for dump, pending in list(self.pending.items()):
            if address in pending.waiting:
                pending.waiting.discard(address)
                self._finish(dump)

    def client_removed(self, client_id: str) -> None:
        for dump, pending in list(self.pending.items()):
            if pending.client_id == client_id:
                del self.pending[dump]
