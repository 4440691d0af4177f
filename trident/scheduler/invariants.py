"""`check_invariants`: every invariant that ties the scheduler's records together.

Tests call it (through `SchedulerState.validate`) after every step they drive; it costs
a pass over all tasks and workers, so production code never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .records import ERRED, MEMORY, NO_WORKER, PROCESSING, WAITING

if TYPE_CHECKING:
    from .state import SchedulerState


def check_invariants(state: SchedulerState) -> None:
    """Raise AssertionError on the first broken invariant of `state`."""
    for key, ts in state.tasks.items():
        assert ts.key == key
        for dep in ts.dependencies:
            assert dep.key in state.tasks, f"{ts} depends on forgotten {dep}"
            assert ts in dep.dependents, f"{ts} not among dependents of {dep}"
        for dependent in ts.dependents:
            assert ts in dependent.dependencies
        for waiter in ts.waiters:
            assert waiter in ts.dependents
        for cs in ts.who_wants:
            assert ts in cs.wants
        if ts.state == MEMORY:
            assert ts.who_has, f"{ts} in memory without holders"
            assert ts.processing_on is None
        else:
            assert not ts.who_has, f"{ts} has holders {ts.who_has}"
        if ts.state == PROCESSING:
            ws = ts.processing_on
            assert ws is not None, f"{ts} processing nowhere"
            assert ts in ws.processing or ts in ws.long_running, f"{ts} not on its worker"
            if not state.deaths.is_held(ws):
                assert state.workers.get(ws.address) is ws, f"{ts} on a departed worker"
                assert all(dep.state == MEMORY for dep in ts.dependencies), ts
        else:
            assert ts.processing_on is None, f"{ts} still on {ts.processing_on}"
        if ts.state == WAITING:
            waiting_for = sum(dep.state != MEMORY for dep in ts.dependencies)
            assert ts.waiting_count == waiting_for, (ts, ts.waiting_count, waiting_for)
            assert ts.waiting_count > 0, f"{ts} waits on nothing"
        if ts.state == NO_WORKER:
            assert ts in state.no_worker
        if ts.state == ERRED:
            assert ts.error is not None
        assert ts.who_wants or ts.dependents, f"{ts} should have been forgotten"
        if ts.state == MEMORY and not ts.who_wants and not ts.waiters:
            raise AssertionError(f"{ts} holds data nobody needs")
    for address, ws in state.workers.items():
        assert ws.address == address
        for ts in ws.processing:
            assert ts.processing_on is ws
            assert ts.state == PROCESSING
        for ts in ws.long_running:
            assert ts.processing_on is ws
            assert ts.state == PROCESSING
            assert ts not in ws.processing
        for ts in ws.has_what:
            assert ws in ts.who_has
        has_room = len(ws.processing) < ws.nthreads and ws not in state.stalls.stalled
        assert has_room == (ws in state.idle), ws
        assert ws.running.keys() <= ws.processing.keys(), ws
        assert len(ws.running) == min(ws.nthreads, len(ws.processing)), ws
        unstarted = ws.unstarted_roots
        assert unstarted.keys() <= ws.processing.keys() - ws.running.keys(), ws
        assert all(ts.is_root and nbytes > 0 for ts, nbytes in unstarted.items()), ws
        assert ws.unstarted_root_bytes == sum(unstarted.values()), ws
        booked = sum(ws.processing.values())
        assert abs(ws.occupancy - booked) <= 1e-6 * max(1.0, booked), (ws, ws.occupancy, booked)
    for cs in state.clients.values():
        for ts in cs.wants:
            assert cs in ts.who_wants
            assert ts.key in state.tasks
    for ts in state.no_worker:
        assert ts.state == NO_WORKER
    state.nannies.validate(state.clients)
    state.liveness.validate(set(state.workers), set(state.clients))
    state.holds.validate()
    state.coordination.validate()
    state.data_movement.validate()
    state.stealing.validate()
    state.lost_data.validate()
