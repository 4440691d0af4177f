"""The scheduler's state summed up for people: `scheduler_info` answers
`Client.scheduler_info`; `worker_metrics` and `task_counts` feed the dashboard too.

Everything returned is plain data (msgpack-friendly); nothing here changes the state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from .records import TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from .state import SchedulerState


def scheduler_info(state: SchedulerState) -> dict[str, Any]:
    """A summary of the scheduler for `Client.scheduler_info`.

    dask's keys (``"address"``, ``"started"``, ``"n_workers"``, ``"total_threads"``,
    ``"total_memory"``, and per worker ``"host"``, ``"nthreads"``, ``"memory_limit"``,
    ...); besides workers, tasks and clients (``"worker_clients"`` of them run by workers for
    their tasks): ``"task_states"`` (tasks per state),
    ``"nannies"`` (by nanny id: its worker, pid, starts, deaths and the last death) and
    ``"worker_deaths"`` (the latest deaths nannies reported, oldest first, each with its
    reason and the tail of the worker's stderr).
    """
    nanny_of = state.nannies.nanny_of()
    workers = state.workers.values()
    return {
        "type": "Scheduler",
        "id": state.id,
        "address": state.address,
        "started": state.started,
        "n_workers": len(state.workers),
        "total_threads": sum(ws.nthreads for ws in workers),
        "total_memory": sum(ws.info.memory_limit for ws in workers),
        "workers": {
            ws.address: {
                "type": "Worker",
                "id": ws.name,
                "host": ws.host,
                "status": "running",
                "services": {},
                "name": ws.name,
                "nthreads": ws.nthreads,
                "memory_limit": ws.info.memory_limit,
                "resources": dict(ws.info.resources),
                "processing": len(ws.processing),
                "long_running": len(ws.long_running),
                "nbytes": ws.nbytes,
                "keys": len(ws.has_what),
                "last_seen": ws.last_seen,
                "metrics": worker_metrics(ws),
                "nanny": nanny_of.get(ws.address),
            }
            for ws in workers
        },
        "tasks": len(state.tasks),
        "task_states": task_counts(state.tasks.values()),
        "clients": len(state.clients),
        "worker_clients": sum(
            cs.name.startswith(m.WORKER_CLIENT_PREFIX) for cs in state.clients.values()
        ),
        "services": dict(state.services),
        "nannies": {nanny_id: nanny.as_dict() for nanny_id, nanny in state.nannies.records.items()},
        "worker_deaths": [death.as_dict() for death in state.nannies.deaths],
    }


def task_counts(tasks: Iterable[TaskRecord]) -> dict[str, int]:
    """How many of `tasks` are in each state."""
    counts: dict[str, int] = defaultdict(int)
    for ts in tasks:
        counts[ts.state] += 1
    return dict(counts)


def worker_metrics(ws: WorkerRecord) -> dict[str, Any]:
    """The worker's latest heartbeat as a dict (zeros before the first one)."""
    hb = ws.heartbeat
    if hb is None:
        return {
            "memory": 0,
            "memory_limit": ws.info.memory_limit,
            "cpu": 0.0,
            "executing": 0,
            "ready": 0,
            "stored": ws.nbytes,
            "spilled": 0,
        }
    return {
        "memory": hb.memory,
        "memory_limit": hb.memory_limit,
        "cpu": hb.cpu,
        "executing": hb.executing,
        "ready": hb.ready,
        "stored": hb.stored,
        "spilled": hb.spilled,
    }
