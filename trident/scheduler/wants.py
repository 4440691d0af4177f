"""`ClientWants`: what clients ask of the task graph, sans-IO.

Clients add tasks (`UpdateGraph`), want existing keys again (`WantKeys`), let them go
(`ReleaseKeys`), cancel them with their dependents (`CancelKeys`), hand them to the
fire-and-forget pseudo-client (`FireAndForget`) and register data they scattered to
workers (`RegisterScattered`). Each request changes who wants which task; the task
transitions that follow are `TaskLifecycle`'s.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import DependencyError, FutureLostError
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from .errors import InvalidMessage
from .functions import FunctionStore
from .lifecycle import TaskLifecycle
from .records import ERRED, MEMORY, RELEASED, WAITING, ClientRecord, TaskRecord, WorkerRecord

#: Task order is ``-priority * PRIORITY_SPAN + sequence``: one int, compared fast.
PRIORITY_SPAN = 2**48


class ClientWants:
    """The client requests that add, want, release and cancel keys.

    Arguments:
        tasks: the scheduler's tasks by key (shared; new tasks are added here).
        clients: the scheduler's clients by id (read only).
        workers: the scheduler's workers by address (read only).
        lifecycle: the task transitions these requests set off.
        functions: the function store (`UpdateGraph` defines functions).
        fire_and_forget: the pseudo-client that wants fire-and-forget keys.
        send: queues a message for a peer.
    """

    def __init__(
        self,
        tasks: dict[str, TaskRecord],
        clients: Mapping[str, ClientRecord],
        workers: Mapping[str, WorkerRecord],
        lifecycle: TaskLifecycle,
        functions: FunctionStore,
        fire_and_forget: ClientRecord,
        send: Callable[[str, Any], None],
    ) -> None:
        self._tasks = tasks
        self._clients = clients
        self._workers = workers
        self._lifecycle = lifecycle
        self._functions = functions
        self._fire_and_forget = fire_and_forget
        self._send = send
        self._sequence = itertools.count()

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        return {
            m.UpdateGraph: self._on_update_graph,
            m.ReleaseKeys: self._on_release_keys,
            m.CancelKeys: self._on_cancel_keys,
            m.FireAndForget: self._on_fire_and_forget,
            m.RegisterScattered: self._on_register_scattered,
            m.WantKeys: self._on_want_keys,
        }

    def _order(self, priority: int) -> int:
        """Where a new task runs relative to others: higher `priority` first, then FIFO."""
        return -priority * PRIORITY_SPAN + next(self._sequence)

    # --- graph updates ------------------------------------------------------------------

    def _on_update_graph(self, cs: ClientRecord, msg: m.UpdateGraph) -> None:
        functions = self._functions
        functions.define(cs, msg.functions)
        try:
            self._add_tasks(cs, msg)
        finally:
            # Large functions count as used by their tasks only.
            functions.forget_unused(msg.functions)

    def _add_tasks(self, cs: ClientRecord, msg: m.UpdateGraph) -> None:
        functions = self._functions
        lifecycle = self._lifecycle
        for spec in msg.tasks:
            ts = self._tasks.get(spec.key)
            if ts is not None:
                lifecycle.want(cs, ts)
                continue
            if spec.function not in functions.payloads:
                raise InvalidMessage(f"task {spec.key!r} uses undefined function {spec.function!r}")
            ts = TaskRecord(spec.key, spec.function, spec.args, self._order(spec.priority))
            functions.ref(spec.function)
            ts.retries = spec.retries
            ts.timeout = spec.timeout
            ts.actor = spec.actor
            if spec.workers is not None:
                ts.restrictions = frozenset(spec.workers)
                ts.allow_other_workers = spec.allow_other_workers
            ts.resources = spec.resources or None
            self._tasks[spec.key] = ts
            cs.wants.add(ts)
            ts.add_wanter(cs)
            if spec.dependencies:
                tasks = self._tasks
                missing = [key for key in spec.dependencies if key not in tasks]
                if missing:
                    error = DependencyError(f"task {spec.key!r} depends on unknown keys {missing}")
                    lifecycle.fail(ts, error_info_for(error))
                    continue
                ts.dependencies = [tasks[key] for key in spec.dependencies]
                for dep in ts.dependencies:
                    dep.add_dependent(ts)
            lifecycle.compute(ts)

    # --- wanting and releasing ----------------------------------------------------------

    def _on_want_keys(self, cs: ClientRecord, msg: m.WantKeys) -> None:
        for key in msg.keys:
            ts = self._tasks.get(key)
            if ts is None:
                error = FutureLostError(f"the scheduler does not know key {key!r}")
                self._send(cs.client_id, m.KeyErred(key, error_info_for(error)))
            elif cs not in ts.who_wants:
                self._lifecycle.want(cs, ts)

    def _on_release_keys(self, cs: ClientRecord, msg: m.ReleaseKeys) -> None:
        lifecycle = self._lifecycle
        for key in msg.keys:
            ts = self._tasks.get(key)
            if ts is not None and cs in ts.who_wants:
                lifecycle.unwant(cs, ts)
                lifecycle.check_release(ts)

    def client_removed(self, cs: ClientRecord) -> None:
        """`cs` left: release everything it wanted and the functions it defined."""
        lifecycle = self._lifecycle
        for ts in list(cs.wants):
            ts.who_wants.discard(cs)
            lifecycle.check_release(ts)
        cs.wants.clear()
        for token in cs.functions:
            self._functions.unref(token)

    def clear_tasks(self, reason: str) -> None:
        """Release every task every client wants (see `SchedulerState.clear_tasks`)."""
        lifecycle = self._lifecycle
        for cs in self._clients.values():
            if cs.wants:
                self._send(cs.client_id, m.KeysCancelled([ts.key for ts in cs.wants], reason))
        for cs in (*self._clients.values(), self._fire_and_forget):
            for ts in list(cs.wants):
                lifecycle.unwant(cs, ts)
                lifecycle.check_release(ts)

    # --- cancel, fire and forget, scatter -----------------------------------------

    def _on_cancel_keys(self, cs: ClientRecord, msg: m.CancelKeys) -> None:
        """Drop the keys (and their dependents) for this client, or for everyone if forced.

        A task other clients still want keeps running unless `force` is set; its
        dependents are then left alone too. Work nobody needs any more stops through
        the usual release cascade.
        """
        lifecycle = self._lifecycle
        tasks = self._tasks
        requested = set(msg.keys)
        stack = [tasks[key] for key in msg.keys if key in tasks]
        seen: set[TaskRecord] = set()
        sole = {cs, self._fire_and_forget}
        while stack:
            ts = stack.pop()
            if ts in seen or ts.key not in tasks:
                continue
            seen.add(ts)
            if not msg.force and not ts.who_wants <= sole:
                if cs in ts.who_wants:
                    lifecycle.unwant(cs, ts)
                    lifecycle.check_release(ts)
                continue
            for client in list(ts.who_wants):
                lifecycle.unwant(client, ts)
                if client is not self._fire_and_forget and (
                    client is not cs or ts.key not in requested
                ):
                    self._send(client.client_id, m.KeysCancelled([ts.key], "cancelled"))
            stack.extend(ts.dependents)
            lifecycle.check_release(ts)

    def _on_fire_and_forget(self, cs: ClientRecord, msg: m.FireAndForget) -> None:
        ff = self._fire_and_forget
        for key in msg.keys:
            ts = self._tasks.get(key)
            if ts is not None and ts.state not in (MEMORY, ERRED):
                ff.wants.add(ts)
                ts.add_wanter(ff)

    def _on_register_scattered(self, cs: ClientRecord, msg: m.RegisterScattered) -> None:
        lifecycle = self._lifecycle
        for key, addresses in msg.who_has.items():
            ts = self._tasks.get(key)
            was_in_memory = ts is not None and ts.state == MEMORY
            if ts is None:
                ts = TaskRecord(key, None, None, self._order(0))
                self._tasks[key] = ts
            elif ts.state not in (MEMORY, RELEASED):
                lifecycle.stop(ts)
                for dep in ts.dependencies:
                    dep.waiters.discard(ts)
            lifecycle.set_state(ts, MEMORY)
            ts.error = None
            ts.type_name = msg.type_names.get(key, "")
            cs.wants.add(ts)
            ts.add_wanter(cs)
            for address in addresses:
                ws = self._workers.get(address)
                if ws is not None:
                    lifecycle.add_replica(ts, ws, msg.nbytes.get(key, 0))
            if not ts.who_has:
                lifecycle.data_lost(ts)
                continue
            if was_in_memory:
                continue  # more replicas of data its dependents already counted as there
            for dependent in ts.dependents:
                if dependent.state == WAITING:
                    dependent.waiting_count -= 1
                    if not dependent.waiting_count:
                        lifecycle.make_ready(dependent)
