"""`Activity`: what the scheduler remembers of recent work, for the dashboard and metrics.

`SchedulerState` calls it once per finished or failed task, at O(1) cost: an append to
a bounded ring buffer and a counter increment. Readers (the dashboard, `/metrics`) take
what was recorded since their last look whenever they tick, so the cost of looking is
paid per tick, never per task and client.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import islice
from typing import NamedTuple, TypeVar

T = TypeVar("T")

#: Task-stream events kept (about 150 bytes each).
STREAM_CAPACITY = 20_000
#: Errors kept, with their tracebacks.
ERRORS_CAPACITY = 100
#: Distinct key prefixes counted; the oldest is dropped beyond this.
PREFIX_CAPACITY = 1_000

OK = "ok"
FAILED = "error"


class TaskEvent(NamedTuple):
    """One run of a task on a worker: where, when (wall-clock seconds) and how it ended."""

    key: str
    prefix: str
    worker: str
    start: float
    stop: float
    status: str  # OK or FAILED


class ErrorEvent(NamedTuple):
    """A task that ended in error, with the rendered traceback."""

    time: float
    key: str
    prefix: str
    worker: str
    text: str


class Activity:
    """Bounded records of task runs and errors, plus cumulative counts per key prefix."""

    def __init__(
        self,
        stream_capacity: int = STREAM_CAPACITY,
        errors_capacity: int = ERRORS_CAPACITY,
    ):
        self.stream: deque[TaskEvent] = deque(maxlen=stream_capacity)
        #: events ever recorded: a reader's cursor is the value it saw last
        self.recorded = 0
        self.errors: deque[ErrorEvent] = deque(maxlen=errors_capacity)
        self.errors_recorded = 0
        #: prefix -> tasks finished / failed since the scheduler started
        self.finished: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.finished_total = 0
        self.failed_total = 0

    def task_ran(
        self, key: str, prefix: str, worker: str, start: float, stop: float, status: str
    ) -> None:
        """Record one run reported by a worker (O(1))."""
        self.stream.append(TaskEvent(key, prefix, worker, start, stop, status))
        self.recorded += 1
        counts = self.finished if status == OK else self.failed
        if status == OK:
            self.finished_total += 1
        else:
            self.failed_total += 1
        count = counts.get(prefix)
        if count is None:
            if len(counts) >= PREFIX_CAPACITY:
                del counts[next(iter(counts))]
            counts[prefix] = 1
        else:
            counts[prefix] = count + 1

    def error(self, time: float, key: str, prefix: str, worker: str, text: str) -> None:
        """Record a task that ended in error (O(1))."""
        self.errors.append(ErrorEvent(time, key, prefix, worker, text))
        self.errors_recorded += 1

    def events_since(self, cursor: int, limit: int | None = None) -> tuple[list[TaskEvent], int]:
        """Task events recorded after `cursor`, oldest first, and the new cursor.

        Events that fell out of the ring buffer are skipped; `limit` keeps only the
        newest ones.
        """
        return _since(self.stream, self.recorded, cursor, limit)

    def errors_since(self, cursor: int, limit: int | None = None) -> tuple[list[ErrorEvent], int]:
        """Errors recorded after `cursor`, oldest first, and the new cursor."""
        return _since(self.errors, self.errors_recorded, cursor, limit)


def _since(buffer: deque[T], recorded: int, cursor: int, limit: int | None) -> tuple[list[T], int]:
    new = min(recorded - cursor, len(buffer))
    if limit is not None:
        new = min(new, limit)
    if new <= 0:
        return [], recorded
    newest_first: Iterator[T] = islice(reversed(buffer), new)
    events = list(newest_first)
    events.reverse()
    return events, recorded
