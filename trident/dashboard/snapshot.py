"""The dashboard's data, computed from `SchedulerState` when someone looks.

Every function here reads the state and returns plain JSON-ready values. None of them
runs per task: the task stream and the errors come from `Activity`'s ring buffers, and
the one pass over all tasks (`progress`) runs once per dashboard tick or request.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from ..scheduler.activity import ErrorEvent, TaskEvent
from ..scheduler.records import (
    ERRED,
    MEMORY,
    NO_WORKER,
    PROCESSING,
    QUEUED,
    RELEASED,
    WAITING,
)
from ..scheduler.state import SchedulerState
from ..scheduler.summary import task_counts, worker_metrics
from .monitor import LoopMonitor

#: Task-stream events sent in one update at most (the newest ones).
STREAM_BATCH = 2_000
#: Errors sent to a page when it connects.
ERRORS_BATCH = 50

_PENDING_STATES = (WAITING, QUEUED, NO_WORKER)


def summary(state: SchedulerState, monitor: LoopMonitor | None, now: float) -> dict[str, Any]:
    """Cluster-wide numbers: workers, threads, tasks by state, memory, rates."""
    threads = 0
    memory = 0
    stored = 0
    spilled = 0
    for ws in state.workers.values():
        threads += ws.nthreads
        metrics = worker_metrics(ws)
        memory += metrics["memory"]
        stored += metrics["stored"]
        spilled += metrics["spilled"]
    activity = state.activity
    return {
        "scheduler": state.id,
        "now": now,
        "workers": len(state.workers),
        "threads": threads,
        "clients": len(state.clients),
        "tasks": task_counts(state.tasks.values()),
        "tasks_total": len(state.tasks),
        "finished_total": activity.finished_total,
        "failed_total": activity.failed_total,
        "transitions_total": state.transitions,
        "transitions_per_second": monitor.transitions_per_second if monitor else 0.0,
        "event_loop_lag": monitor.lag if monitor else 0.0,
        "memory": memory,
        "stored": stored,
        "spilled": spilled,
    }


def _natural(name: str) -> list[Any]:
    """Sort key that puts ``worker-2`` before ``worker-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def workers(state: SchedulerState, now: float) -> list[dict[str, Any]]:
    """One row per worker, ordered by name."""
    rows = []
    for ws in sorted(state.workers.values(), key=lambda ws: _natural(ws.name)):
        metrics = worker_metrics(ws)
        rows.append(
            {
                "address": ws.address,
                "name": ws.name,
                "nthreads": ws.nthreads,
                "memory": metrics["memory"],
                "memory_limit": metrics["memory_limit"],
                "stored": metrics["stored"],
                "spilled": metrics["spilled"],
                "cpu": metrics["cpu"],
                "processing": len(ws.processing) + len(ws.long_running),
                "executing": metrics["executing"],
                "ready": metrics["ready"],
                "keys": len(ws.has_what),
                "heartbeat_age": None if ws.heartbeat is None else max(0.0, now - ws.last_seen),
            }
        )
    return rows


def progress(state: SchedulerState) -> list[dict[str, Any]]:
    """Per key prefix: done (finished since start), running, waiting, in memory, erred.

    One pass over the scheduler's tasks; prefixes with nothing left to show are omitted.
    """
    live: dict[str, dict[str, int]] = defaultdict(
        lambda: {"running": 0, "waiting": 0, "memory": 0, "erred": 0, "released": 0}
    )
    for ts in state.tasks.values():
        s = ts.state
        if s == PROCESSING:
            live[ts.prefix]["running"] += 1
        elif s in _PENDING_STATES:
            live[ts.prefix]["waiting"] += 1
        elif s == MEMORY:
            live[ts.prefix]["memory"] += 1
        elif s == ERRED:
            live[ts.prefix]["erred"] += 1
        elif s == RELEASED:
            live[ts.prefix]["released"] += 1
    finished = state.activity.finished
    rows = []
    for prefix in sorted(set(live) | set(finished)):
        counts = live.get(prefix) or {
            "running": 0,
            "waiting": 0,
            "memory": 0,
            "erred": 0,
            "released": 0,
        }
        rows.append({"prefix": prefix, "done": finished.get(prefix, 0), **counts})
    return rows


def stream_rows(events: list[TaskEvent]) -> list[list[Any]]:
    """Task events as compact rows: ``[key, prefix, worker, start, stop, status]``."""
    return [
        [e.key, e.prefix, e.worker, round(e.start, 4), round(e.stop, 4), e.status] for e in events
    ]


def error_rows(errors: list[ErrorEvent]) -> list[dict[str, Any]]:
    return [
        {"time": e.time, "key": e.key, "prefix": e.prefix, "worker": e.worker, "text": e.text}
        for e in errors
    ]


def everything(state: SchedulerState, monitor: LoopMonitor | None, now: float) -> dict[str, Any]:
    """What a page shows, minus the task stream and errors (which go by cursor)."""
    return {
        "summary": summary(state, monitor, now),
        "workers": workers(state, now),
        "progress": progress(state),
    }
