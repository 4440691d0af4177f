"""`ClusterQueries`: the scheduler's answers to `who_has`, `has_what`, `processing`,
`nbytes`, `get_versions`, `scheduler_info`, `recreate_error_locally` and
`get_scheduler_logs`, sans-IO.

Each handler reads the state's records and answers with one `Reply`; nothing changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._versions import local_versions
from ..protocol import messages as m
from .records import (
    ERRED,
    MEMORY,
    NO_WORKER,
    PROCESSING,
    QUEUED,
    WAITING,
    ClientRecord,
    TaskRecord,
    WorkerRecord,
)
from .replay import NoErrorCause, error_cause
from .summary import scheduler_info

#: The states of a task that has not run (yet): what graph progress counts as not done.
_UNFINISHED = frozenset({WAITING, QUEUED, NO_WORKER, PROCESSING})

if TYPE_CHECKING:
    from .state import SchedulerState

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
    """Read-only queries about the cluster: where keys live, what workers do, why a task
    failed, the scheduler's summary and its recent logs."""

    def __init__(self, state: SchedulerState, send: Send):
        self._state = state
        self._tasks = state.tasks
        self._workers = state.workers
        self._send = send

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages answered here, for `SchedulerState`."""
        return {
            m.WhoHasRequest: self._on_who_has,
            m.HasWhatRequest: self._on_has_what,
            m.ProcessingRequest: self._on_processing,
            m.NbytesRequest: self._on_nbytes,
            m.GraphProgress: self._on_graph_progress,
            m.VersionsRequest: self._on_versions,
            m.InfoRequest: self._on_info,
            m.ErrorCause: self._on_error_cause,
            m.LogsRequest: self._on_logs,
        }

    def _reply(self, cs: ClientRecord, request_id: int, value: Any) -> None:
        self._send(cs.client_id, m.Reply(request_id, value, None))

    def _on_who_has(self, cs: ClientRecord, msg: m.WhoHasRequest) -> None:
        if msg.keys is None:
            found = {key: [ws.address for ws in ts.who_has] for key, ts in self._tasks.items()}
        else:
            found = {}
            for key in msg.keys:
                ts = self._tasks.get(key)
                found[key] = [ws.address for ws in ts.who_has] if ts is not None else []
        self._reply(cs, msg.request_id, found)

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

    def _on_graph_progress(self, cs: ClientRecord, msg: m.GraphProgress) -> None:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        seen: set[TaskRecord] = set()
        stack = [self._tasks[key] for key in msg.keys if key in self._tasks]
        while stack:
            ts = stack.pop()
            if ts in seen:
                continue
            seen.add(ts)
            found = counts[ts.prefix]
            found[1] += 1
            if ts.state not in _UNFINISHED:
                found[0] += 1
                found[2] += ts.state == ERRED
            stack.extend(ts.dependencies)
        self._reply(cs, msg.request_id, dict(counts))

    def _on_versions(self, cs: ClientRecord, msg: m.VersionsRequest) -> None:
        self._reply(cs, msg.request_id, local_versions(msg.packages))

    def _on_info(self, cs: ClientRecord, msg: m.InfoRequest) -> None:
        self._reply(cs, msg.request_id, scheduler_info(self._state))

    def _on_error_cause(self, cs: ClientRecord, msg: m.ErrorCause) -> None:
        try:
            cause = error_cause(self._tasks, self._state.functions, msg.key)
        except NoErrorCause as exc:
            self._send(cs.client_id, m.Reply(msg.request_id, None, str(exc)))
            return
        self._reply(cs, msg.request_id, cause)

    def _on_logs(self, cs: ClientRecord, msg: m.LogsRequest) -> None:
        records = [list(record) for record in self._state.logs.tail(msg.n)]
        self._reply(cs, msg.request_id, records)
