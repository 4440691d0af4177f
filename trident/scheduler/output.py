"""`OutputForwarding`: task output (``print``, logging) passed from workers to the clients
that asked for it, sans-IO.

Workers capture task output only while at least one client wants it forwarded
(`Client(forward_logging=True)`, `Client.forward_logging()`); each captured entry then
goes to the forwarding clients that want its task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..protocol import messages as m
from .records import ClientRecord, TaskRecord, WorkerRecord

Send = Callable[[str, Any], None]


class OutputForwarding:
    """Which clients forward task output, and the workers' capture switch."""

    def __init__(
        self, tasks: Mapping[str, TaskRecord], workers: Mapping[str, WorkerRecord], send: Send
    ):
        self._tasks = tasks
        self._workers = workers
        self._send = send
        self._forwarding_clients = 0

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages handled here, for `SchedulerState`."""
        return {m.ForwardOutput: self._on_forward_output}

    def worker_handlers(self) -> dict[type, Callable[[WorkerRecord, Any], None]]:
        """The worker messages handled here, for `SchedulerState`."""
        return {m.TaskOutput: self._on_task_output}

    def worker_added(self, address: str) -> None:
        """A new worker captures output at once if some client forwards it."""
        if self._forwarding_clients:
            self._send(address, m.CaptureOutput(True))

    def client_left(self, cs: ClientRecord) -> None:
        """`cs` left, for good or for now: it forwards nothing any more."""
        if cs.forward_output:
            self._set_forwarding(cs, False)

    def _on_forward_output(self, cs: ClientRecord, msg: m.ForwardOutput) -> None:
        if msg.enabled != cs.forward_output:
            self._set_forwarding(cs, msg.enabled)

    def _set_forwarding(self, cs: ClientRecord, enabled: bool) -> None:
        cs.forward_output = enabled
        was_capturing = self._forwarding_clients > 0
        self._forwarding_clients += 1 if enabled else -1
        capturing = self._forwarding_clients > 0
        if capturing != was_capturing:
            for address in self._workers:
                self._send(address, m.CaptureOutput(capturing))

    def _on_task_output(self, ws: WorkerRecord, msg: m.TaskOutput) -> None:
        """Pass each entry on to the forwarding clients that want its task."""
        if not self._forwarding_clients:
            return
        by_client: dict[str, list[m.OutputEntry]] = {}
        for entry in msg.entries:
            ts = self._tasks.get(entry.key)
            if ts is None:
                continue
            for cs in ts.who_wants:
                if cs.forward_output:
                    by_client.setdefault(cs.client_id, []).append(entry)
        for client_id, entries in by_client.items():
            self._send(client_id, m.TaskOutput(ws.address, entries))
