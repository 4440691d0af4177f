"""`Assignments`: which worker runs which task, sans-IO.

Ready root tasks wait in one priority queue and are handed out, round robin, to the
workers with room (`placement.has_room`) when the scheduler flushes; other ready tasks
are placed at once (`TaskLifecycle.make_ready`). Each worker's books say what it
processes and the estimated seconds of each task (`occupancy` is their sum), which of
those are presumed to run on a thread now (`running`, the oldest first), and which
left their thread slot (`long_running`, see `secede`). A worker with fewer processing
tasks than threads is *idle*, unless it is stalled (`stalls`); idle workers are where
queued tasks and stolen ones go.

This part changes a task's state to `processing` and back, but does not count
transitions: that is the lifecycle's job (`TaskLifecycle.transitions`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from ..protocol.serialize import Serialized
from .placement import PIPELINE_BYTES, DurationEstimates, has_room, offer_limits
from .records import PROCESSING, QUEUED, TaskRecord, WorkerRecord

if TYPE_CHECKING:
    from .stealing import WorkStealing

#: Least seconds between two passes that book processing tasks with new estimates
#: (each pass costs O(processing tasks); `DurationEstimates.stale`).
REBOOK_INTERVAL = 0.1


class Assignments:
    """The queue of ready root tasks and every worker's processing books.

    Arguments:
        workers: the scheduler's workers by address (read only).
        idle: workers with at least one free thread, in the order they became free
            (shared with the scheduler; kept up to date here).
        durations: estimated seconds and output bytes per task prefix.
        functions: function payloads by token, sent to a worker before its first task
            that uses one.
        send: queues a message for a peer.
        clock: wall-clock seconds.
        stealing: told when a task leaves a worker's books, when a worker has room and
            when one has more tasks than threads (`WorkStealing.queued`).
        stalled: workers gone quiet (`WorkerStalls.stalled`, read only): never idle,
            and offered no queued tasks.
        set_state: sets a task's state and logs it (`TaskStory.transition`).
    """

    def __init__(
        self,
        workers: Mapping[str, WorkerRecord],
        idle: dict[WorkerRecord, None],
        durations: DurationEstimates,
        functions: Mapping[str, Serialized],
        send: Callable[[str, Any], None],
        clock: Callable[[], float],
        stealing: WorkStealing,
        stalled: Collection[WorkerRecord],
        set_state: Callable[[TaskRecord, str], None],
    ) -> None:
        self._set_state = set_state
        self._workers = workers
        self.idle = idle
        self._durations = durations
        self._functions = functions
        self._send = send
        self._clock = clock
        self._stealing = stealing
        self._stalled = stalled
        #: heap of queued root tasks; entries whose state moved on are stale
        self.queue: list[TaskRecord] = []
        #: whether `schedule_queued` may have work to do (a task queued, room freed up)
        self.dirty = False
        self._next_rebooking = 0.0

    def enqueue(self, ts: TaskRecord) -> None:
        """`ts` (a root task, now `queued`) waits for a worker with room."""
        heapq.heappush(self.queue, ts)
        self.dirty = True

    def schedule_queued(self) -> int:
        """Hand queued root tasks, round robin, to the workers with room (`has_room`).

        A worker without a free thread stops being offered tasks at the first one that
        does not `placement.fits_bytes` on it. Returns how many tasks were assigned.
        """
        self.dirty = False
        queue = self.queue
        while queue and queue[0].state != QUEUED:
            heapq.heappop(queue)
        if not queue or not self._workers:
            return 0
        now = self._clock()
        assigned = 0
        sizes = self._durations.sizes
        # Per worker: [free threads, seconds left under the window, tasks left under the
        # count bound], spent as tasks are handed out (`has_room`, without recomputing).
        stalled = self._stalled
        room = {
            ws: offer_limits(ws, now)
            for ws in self._workers.values()
            if has_room(ws, now) and ws not in stalled
        }
        while room:
            for ws in list(room):
                ts = queue[0]
                while ts.state != QUEUED:
                    heapq.heappop(queue)
                    if not queue:
                        return assigned
                    ts = queue[0]
                limits = room[ws]
                nbytes = sizes.get(ts.prefix, 0)
                # `fits_bytes`, inlined: this runs for every pipelined root task.
                if (
                    limits[0] <= 0
                    and len(ws.processing) >= 2 * ws.nthreads
                    and ws.unstarted_root_bytes + nbytes > PIPELINE_BYTES * ws.nthreads
                ):
                    del room[ws]
                    continue
                heapq.heappop(queue)
                estimate = self.assign(ts, ws, now, nbytes)
                assigned += 1
                limits[0] -= 1
                limits[1] -= estimate
                limits[2] -= 1
                if limits[0] <= 0 and (limits[1] <= 0.0 or limits[2] <= 0):
                    del room[ws]
                if not queue:
                    return assigned
        return assigned

    def assign(
        self,
        ts: TaskRecord,
        ws: WorkerRecord,
        now: float | None = None,
        root_bytes: int | None = None,
    ) -> float:
        """Send `ts` to `ws` (at time `now`, the clock's by default); return its estimate.

        `root_bytes`: the expected output bytes of `ts` when the caller knows it is a
        root task (else looked up if it is one); booked on `ws` while it waits unstarted.
        """
        self._set_state(ts, PROCESSING)
        ts.processing_on = ws
        estimate = self._durations.get(ts.prefix)
        ws.processing[ts] = estimate
        ws.occupancy += estimate
        if len(ws.running) < ws.nthreads:
            ws.running[ts] = self._clock() if now is None else now
        else:
            if root_bytes is None and ts.is_root:
                root_bytes = self._durations.output_bytes(ts.prefix)
            if root_bytes:
                ws.unstarted_roots[ts] = root_bytes
                ws.unstarted_root_bytes += root_bytes
        if len(ws.processing) >= ws.nthreads:
            self.idle.pop(ws, None)
            if len(ws.processing) > ws.nthreads:
                self._stealing.queued[ws] = None
        assert ts.function is not None
        assert ts.args is not None
        if ts.function not in ws.functions:
            ws.functions.add(ts.function)
            self._send(ws.address, m.DefineFunction(ts.function, self._functions[ts.function]))
        who_has = {dep.key: [holder.address for holder in dep.who_has] for dep in ts.dependencies}
        self._send(
            ws.address,
            m.RunTask(
                ts.key,
                ts.function,
                ts.args,
                who_has,
                [ts.priority],
                bool(ts.who_wants),
                ts.resources,
                ts.timeout,
                ts.actor,
                ts.restarts,
            ),
        )
        return estimate

    def unassign(self, ts: TaskRecord) -> WorkerRecord | None:
        """Take a processing task off its worker's books; return that worker."""
        ws = ts.processing_on
        if ws is None:
            return None
        ts.processing_on = None
        stealing = self._stealing
        if stealing.in_flight:
            stealing.forget(ts)
        estimate = ws.processing.pop(ts, None)
        if estimate is not None:
            ws.occupancy = max(0.0, ws.occupancy - estimate)
            if ts in ws.running:
                del ws.running[ts]
                self._next_running(ws)
            elif ws.unstarted_roots:
                _started(ws, ts)
        else:
            ws.long_running.pop(ts, None)
        if (
            len(ws.processing) < ws.nthreads
            and self._workers.get(ws.address) is ws
            and ws not in self._stalled
        ):
            self.idle[ws] = None
            stealing.due = True
        self.dirty = True
        return ws

    def secede(self, ts: TaskRecord, ws: WorkerRecord) -> None:
        """`ts` left its thread slot on `ws` (`secede`): `ws` has room for another task."""
        estimate = ws.processing.pop(ts)
        ws.occupancy = max(0.0, ws.occupancy - estimate)
        if ts in ws.running:
            del ws.running[ts]
            self._next_running(ws)
        elif ws.unstarted_roots:
            _started(ws, ts)
        ws.long_running[ts] = None
        if len(ws.processing) < ws.nthreads and ws not in self._stalled:
            self.idle[ws] = None
            self._stealing.due = True
        self.dirty = True

    def _next_running(self, ws: WorkerRecord) -> None:
        """A thread of `ws` freed up: presume the oldest queued task started on it now."""
        running = ws.running
        if len(running) >= ws.nthreads or len(ws.processing) <= len(running):
            return
        now = self._clock()
        unstarted = ws.unstarted_roots
        for ts in ws.processing:
            if ts not in running:
                running[ts] = now
                if unstarted:
                    nbytes = unstarted.pop(ts, 0)
                    ws.unstarted_root_bytes -= nbytes
                if len(running) >= ws.nthreads:
                    return

    def refresh_estimates(self) -> None:
        """Book processing tasks again if some prefix's estimate moved far from the one
        they were booked with (at most every `REBOOK_INTERVAL` seconds), so backlogs
        reflect what was learnt."""
        if not self._durations.stale:
            return
        now = self._clock()
        if now < self._next_rebooking:
            return
        self._next_rebooking = now + REBOOK_INTERVAL
        stale = self._durations.take_stale()
        get = self._durations.get
        for ws in self._workers.values():
            processing = ws.processing
            total = 0.0
            for ts, old in processing.items():
                if ts.prefix in stale:
                    old = processing[ts] = get(ts.prefix)
                total += old
            ws.occupancy = total


def _started(ws: WorkerRecord, ts: TaskRecord) -> None:
    """`ts` no longer waits unstarted on `ws`: its output bytes leave the tally."""
    nbytes = ws.unstarted_roots.pop(ts, None)
    if nbytes is not None:
        ws.unstarted_root_bytes -= nbytes
