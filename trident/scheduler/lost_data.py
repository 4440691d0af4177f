"""`LostData`: data that cannot be recomputed is awaited a while from a worker that may
come back, sans-IO.

A key without a function (scattered data) whose last holder left cannot be recomputed.
When that holder may still be alive (`may_return`: removed because it was silent, or
its connection dropped while a nanny, which has not reported it dead, supervises it),
the key is *parked* instead of failing at once: it is released as any lost key (clients
hear `KeysLost`, dependents wait for it again) but stays known, and for
`LivenessSettings.lost_data_grace` seconds:

- the worker registering again and reporting the key among the data it holds gives it
  back (`restore`): the key is in memory there, its clients hear `KeyDone`, and its
  dependents run;
- the worker registering again without it, or its nanny reporting it dead, ends the
  wait at once: the data is gone;
- when the grace period ends the key fails with `FutureLostError`, as it did before
  without a grace period.

A parked key that nothing needs any more is forgotten as usual; its entry here is then
dropped when its time comes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import FutureLostError
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from .records import MEMORY, RELEASED, WAITING, TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from .state import SchedulerState


class LostData:
    """Keys awaited from departed workers: parked key -> (its holder's address, deadline)."""

    def __init__(self, state: SchedulerState):
        self._state = state
        self.parked: dict[TaskRecord, tuple[str, float]] = {}
        #: keys given back by a returning worker (for tests and diagnostics)
        self.restored = 0

    def __contains__(self, ts: TaskRecord) -> bool:
        return ts in self.parked

    def park(self, ts: TaskRecord, address: str) -> bool:
        """Await the lost `ts` from the worker at `address`; False (nothing parked) when
        the settings allow no grace period."""
        grace = self._state.liveness.settings.lost_data_grace
        if grace <= 0:
            return False
        self.parked[ts] = (address, self._state.liveness.now + grace)
        return True

    def _current(self, ts: TaskRecord) -> bool:
        """Whether `ts` is still the known, released task it was when parked."""
        return self._state.tasks.get(ts.key) is ts and ts.state == RELEASED

    def restore(self, ts: TaskRecord, ws: WorkerRecord, nbytes: int) -> bool:
        """`ws` registered holding `ts`: if it was parked, it is in memory again there."""
        if self.parked.pop(ts, None) is None or not self._current(ts):
            return False
        state = self._state
        lifecycle = state.lifecycle
        self.restored += 1
        lifecycle.set_state(ts, MEMORY)
        lifecycle.transitions += 1
        lifecycle.add_replica(ts, ws, nbytes)
        done = m.KeyDone(ts.key, ts.type_name, ts.nbytes, None)
        for cs in ts.who_wants:
            if cs.client_id in state.clients:
                state.outbox.send(cs.client_id, done)
        for dependent in ts.dependents:
            if dependent.state == WAITING:
                dependent.waiting_count -= 1
                if not dependent.waiting_count:
                    lifecycle.make_ready(dependent)
        return True

    def holder_gone(self, address: str) -> None:
        """The worker at `address` is dead, or came back without some keys: what was
        awaited from it is lost now."""
        for ts in [ts for ts, (holder, _) in self.parked.items() if holder == address]:
            self._lose(ts)

    def expire(self, now: float) -> None:
        """Declare lost the keys whose grace period ended by `now`."""
        for ts in [ts for ts, (_, due) in self.parked.items() if due <= now]:
            self._lose(ts)

    def _lose(self, ts: TaskRecord) -> None:
        del self.parked[ts]
        if not self._current(ts):
            return
        if ts.who_wants or ts.waiters:
            error = FutureLostError(
                f"the only workers holding {ts.key!r} are gone and it cannot be recomputed"
            )
            self._state.lifecycle.fail(ts, error_info_for(error))
        else:
            self._state.release_if_unneeded(ts)

    def validate(self) -> None:
        """Every parked key that is still known and released is data, not a task."""
        for ts in self.parked:
            if self._current(ts):
                assert ts.function is None, ts
