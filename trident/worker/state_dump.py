"""`describe_state`: a `WorkerState` as plain data, for `Client.dump_cluster_state`.

Everything is strings, numbers, lists and dicts (msgpack and YAML write it as it is);
task values and payloads are never included, only their sizes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from .._eventlog import as_records

if TYPE_CHECKING:
    from .state import WorkerState
    from .tasks import WorkerTask


def describe_task(ts: WorkerTask, exclude: Collection[str] = ()) -> dict[str, Any]:
    """One task's record; fields named in `exclude` are left out."""
    record = {
        "key": ts.key,
        "state": ts.state,
        "is_compute": ts.is_compute,
        "function": ts.function,
        "priority": list(ts.priority),
        "dependencies": [dep.key for dep in ts.dependencies],
        "dependents": sorted(dep.key for dep in ts.dependents),
        "waiting_for": sorted(dep.key for dep in ts.waiting_for),
        "who_has": list(ts.who_has),
        "tried": sorted(ts.tried),
        "nbytes": ts.nbytes,
        "run_id": ts.run_id,
        "cancelled": ts.cancelled,
        "resources": ts.resources,
        "timeout": ts.timeout,
        "actor": ts.actor is not None,
        "acquiring": ts.acquiring,
    }
    for name in exclude:
        record.pop(name, None)
    return record


def describe_state(state: WorkerState, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The worker's tasks, slots, fetches and recent events (its log, oldest first)."""
    return {
        "address": state.address,
        "nthreads": state.nthreads,
        "paused": state.paused,
        "closed": state.closed,
        "tasks": {key: describe_task(ts, exclude) for key, ts in state.tasks.items()},
        "executing": {str(run_id): ts.key for run_id, ts in state.executing.items()},
        "seceded": {str(run_id): ts.key for run_id, ts in state.seceded.items()},
        "data": list(state.data),
        "fetches_in_flight": dict(state.fetches_in_flight),
        "replicas_pending": sorted(state.replicas.pending),
        "functions": sorted(state.functions),
        "resources_free": dict(state.resources_free),
        "mean_duration": state.mean_duration,
        "log": as_records(state.log),
    }
