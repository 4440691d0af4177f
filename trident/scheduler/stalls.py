"""`WorkerStalls`: a worker that went quiet keeps none of the work it has not started.

A worker the scheduler has not heard from (no message, no heartbeat) for
`LivenessSettings.worker_stall` seconds is *stalled*: stopped (SIGSTOP), swapping, cut
off by the network, or stuck in native code that holds the GIL. It may come back, so it
is not removed (that waits for `worker_timeout`), but while it is stalled:

- it is offered no work: it leaves `SchedulerState.idle` (so it steals nothing and is no
  one's first choice), queued root tasks are not handed to it, and ready tasks go to it
  only when no other worker may run them;
- the tasks on its books that it has presumably not started (those behind its threads,
  `WorkerRecord.running`) and that may run anywhere are taken off its books and placed
  afresh; steals in flight from it settle as if it had answered that it dropped them
  (the task goes to its thief). It is sent `RecallTasks` for all of them under request
  id `SETTLED` (an id no steal uses, so its answer changes nothing), so when it comes
  back it drops those it has not started.

This is the timeout of a recall: a victim that never answers does not keep its tasks.
Tasks it started stay on its books: moving them could run them twice at once. A task
that it did start after all (it came back and began it before it read the recall) runs
twice; the scheduler keeps the first result and frees the other, as for any result from
a worker the task is no longer on. Once it is heard from again it is no longer stalled
(at the next tick) and gets work as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import messages as m
from .records import WorkerRecord
from .stealing import stealable

if TYPE_CHECKING:
    from .state import SchedulerState

#: The request id of recalls the scheduler settled without waiting for the answer.
SETTLED = 0


class WorkerStalls:
    """The stalled workers of one `SchedulerState`, updated at every tick.

    `stalled` may still hold a worker that was removed since the last tick; lookups
    compare records, so a worker registering again at that address is not stalled.
    """

    def __init__(self, state: SchedulerState):
        self._state = state
        self.stalled: set[WorkerRecord] = set()
        #: tasks taken off stalled workers (for tests and diagnostics)
        self.moved = 0

    def tick(self, now: float) -> None:
        """Stall the workers silent for `worker_stall` seconds at `now`; resume the
        stalled ones that were heard from since."""
        state = self._state
        quiet = {
            state.workers[address]
            for address in state.liveness.quiet_workers(now, state.liveness.settings.worker_stall)
        }
        for ws in self.stalled - quiet:
            self.stalled.discard(ws)
            if state.workers.get(ws.address) is ws:
                self._resume(ws)
        newly = quiet - self.stalled
        self.stalled |= newly  # all of them first: none may be another's thief
        for ws in newly:
            self._stall(ws)

    def _stall(self, ws: WorkerRecord) -> None:
        state = self._state
        state.idle.pop(ws, None)
        stealing = state.stealing
        keys: list[str] = []
        for ts in list(ws.processing):
            if ts in ws.running or not stealable(ts):
                continue
            steal = stealing.in_flight.get(ts)
            thief = steal.thief if steal is not None and steal.thief not in self.stalled else None
            keys.append(ts.key)
            self.moved += 1
            state.move_task(ts, thief)
        if keys:
            state.outbox.send(ws.address, m.RecallTasks(SETTLED, keys))

    def _resume(self, ws: WorkerRecord) -> None:
        state = self._state
        if len(ws.processing) < ws.nthreads:
            state.idle[ws] = None
        state.stealing.due = True
        state.books.dirty = True
