"""`check_invariants`: what must hold between a `WorkerState`'s tasks, data and slots.

Tests run it around every step (`WorkerState.validate`); it raises AssertionError
naming the first invariant broken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .tasks import EXECUTING, FETCH, FLIGHT, MEMORY, WAITING

if TYPE_CHECKING:
    from .state import WorkerState


def check_invariants(state: WorkerState) -> None:
    """Check `state`; O(tasks + edges)."""
    for key, ts in state.tasks.items():
        assert ts.key == key
        assert (ts.state == MEMORY) == (key in state.data), ts
        for dep in ts.dependencies:
            assert ts in dep.dependents, (ts, dep)
        for dependent in ts.dependents:
            assert ts in dependent.dependencies, (ts, dependent)
        if ts.state == WAITING:
            assert ts.waiting_for, ts
        if ts.state == EXECUTING:
            assert (state.executing.get(ts.run_id) or state.seceded.get(ts.run_id)) is ts
        if not ts.is_compute:
            assert ts.dependents or ts.state == FLIGHT or ts.acquiring, f"{ts} is an orphan input"
        if ts.acquiring:
            assert ts.state in (FETCH, FLIGHT), ts
    for runs in (state.executing, state.seceded):
        for run_id, ts in runs.items():
            assert ts.run_id == run_id
            assert ts.cancelled or state.tasks.get(ts.key) is ts, f"{ts} lost its run {run_id}"
    assert not state.executing.keys() & state.seceded.keys()
    assert set(state.rejoining) <= state.seceded.keys()
    assert set(state.data) <= set(state.tasks)
    state.replicas.check()
