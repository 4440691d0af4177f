"""`ClusterQueries`: the scheduler's answers to `has_what`, `processing`, `nbytes` and
`get_versions`, sans-IO.

Each handler reads the state's records and answers with one `Reply`; nothing changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from .._versions import local_versions
from ..protocol import messages as m
from .records import MEMORY, ClientRecord, TaskRecord, WorkerRecord

Send = Callable[[str, Any], None]


def select_workers(
    workers: Mapping[str, WorkerRecord], names: list[str] | None
) -> list[WorkerRecord]:
    """The workers named by address or name in `names` (every worker when None)."""
    if names is None:
        return list(workers.values())
    wanted = set(names)
    return [ws for ws in workers.values() if ws.address in wanted or ws.name in wanted]


class ClusterQueries:
    """Read-only queries about where keys live and what workers do."""

    def __init__(
        self, tasks: Mapping[str, TaskRecord], workers: Mapping[str, WorkerRecord], send: Send
    ):
        self._tasks = tasks
        self._workers = workers
        self._send = send

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages answered here, for `SchedulerState`."""
        return {
            m.HasWhatRequest: self._on_has_what,
            m.ProcessingRequest: self._on_processing,
            m.NbytesRequest: self._on_nbytes,
            m.VersionsRequest: self._on_versions,
        }

    def _reply(self, cs: ClientRecord, request_id: int, value: Any) -> None:
        self._send(cs.client_id, m.Reply(request_id, value, None))

    def _on_has_what(self, cs: ClientRecord, msg: m.HasWhatRequest) -> None:
        found = {
            ws.address: [ts.key for ts in ws.has_what]
            for ws in select_workers(self._workers, msg.workers)
        }
        self._reply(cs, msg.request_id, found)

    def _on_processing(self, cs: ClientRecord, msg: m.ProcessingRequest) -> None:
        found = {
            ws.address: [ts.key for ts in (*ws.processing, *ws.long_running)]
            for ws in select_workers(self._workers, msg.workers)
        }
        self._reply(cs, msg.request_id, found)

    def _on_nbytes(self, cs: ClientRecord, msg: m.NbytesRequest) -> None:
        if msg.keys is None:
            records: Any = self._tasks.values()
        else:
            records = [self._tasks[key] for key in msg.keys if key in self._tasks]
        in_memory = [ts for ts in records if ts.state == MEMORY]
        if msg.summary:
            totals: dict[str, int] = defaultdict(int)
            for ts in in_memory:
                totals[ts.prefix] += ts.nbytes
            self._reply(cs, msg.request_id, dict(totals))
        else:
            self._reply(cs, msg.request_id, {ts.key: ts.nbytes for ts in in_memory})

    def _on_versions(self, cs: ClientRecord, msg: m.VersionsRequest) -> None:
        self._reply(cs, msg.request_id, local_versions(msg.packages))
