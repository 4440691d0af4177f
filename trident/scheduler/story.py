"""`TaskStory`: the scheduler's bounded log of task transitions, sans-IO.

Every change of a task's state goes through `TaskStory.transition`, which sets the
state, appends ``(key, start, finish, stimulus id, time)`` to a ``deque(maxlen=...)``
(O(1); the oldest entries fall off) and tells the observers (scheduler plugins) when
there are any. `Client.story` reads it (`story`); dask keeps the same log
(``Scheduler.transition_log``, 100,000 entries). Keys are the scheduler's wire keys.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from typing import Any

from .records import TaskRecord

#: Transitions kept (as dask's default ``distributed.admin.low-level-log-length``).
DEFAULT_STORY_LENGTH = 100_000

#: ``observer(key, start, finish, stimulus_id)``
Observer = Callable[[str, str, str, Any], None]


class TaskStory:
    """The recent transitions of every task, and who wants to hear of them.

    Arguments:
        clock: wall-clock seconds, for each entry's time.
        length: entries kept.
    """

    def __init__(self, clock: Callable[[], float], length: int = DEFAULT_STORY_LENGTH):
        self._clock = clock
        self.log: deque[tuple[str, str, str, Any, float]] = deque(maxlen=length)
        #: the stimulus id of the event being handled (set by `SchedulerState`)
        self.stimulus_id: Any = 0
        #: called after every transition (empty unless plugins watch transitions)
        self.observers: list[Observer] = []

    def transition(self, ts: TaskRecord, finish: str) -> None:
        """Move `ts` to state `finish` and log it."""
        start = ts.state
        ts.state = finish
        self.log.append((ts.key, start, finish, self.stimulus_id, self._clock()))
        if self.observers:
            for observer in self.observers:
                observer(ts.key, start, finish, self.stimulus_id)

    def forgotten(self, ts: TaskRecord) -> None:
        """`ts` left the scheduler's records (its state stays as it was)."""
        self.log.append((ts.key, ts.state, "forgotten", self.stimulus_id, self._clock()))
        if self.observers:
            for observer in self.observers:
                observer(ts.key, ts.state, "forgotten", self.stimulus_id)

    def story(self, keys: Collection[str]) -> list[tuple[str, str, str, Any, float]]:
        """The logged transitions of `keys`, oldest first: O(entries kept)."""
        wanted = set(keys)
        return [entry for entry in self.log if entry[0] in wanted]
