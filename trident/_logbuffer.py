"""`LogBuffer`: the last log records of one actor, kept in memory for `get_*_logs`.

Several actors can share a process (and a logger) in tests and in-process clusters, so
each buffer keeps only the records logged while its owner is the *current log owner*:
a context variable the actor sets in its own tasks (trio copies it into child tasks).
"""

from __future__ import annotations

import logging
from collections import deque
from contextvars import ContextVar

#: The actor whose tasks are running; set with `LogBuffer.claim_current_context`.
current_owner: ContextVar[object | None] = ContextVar("trident_log_owner", default=None)

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
#: Records kept per actor.
DEFAULT_CAPACITY = 10_000


class LogBuffer(logging.Handler):
    """A logging handler that keeps the last `capacity` records of `owner`, formatted.

    Records are formatted when logged, so a buffer never keeps arguments or tracebacks
    alive. Attach it with `attach` and remove it with `detach`.
    """

    def __init__(self, owner: object, capacity: int = DEFAULT_CAPACITY):
        super().__init__(logging.NOTSET)
        self.owner = owner
        self.records: deque[tuple[str, str]] = deque(maxlen=capacity)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self._loggers: list[logging.Logger] = []

    def claim_current_context(self) -> None:
        """Mark the calling task (and tasks it starts from now on) as this buffer's owner."""
        current_owner.set(self.owner)

    def emit(self, record: logging.LogRecord) -> None:
        if current_owner.get() is not self.owner:
            return
        try:
            self.records.append((record.levelname, self.format(record)))
        except Exception:
            self.handleError(record)

    def tail(self, n: int | None = None) -> list[tuple[str, str]]:
        """The last `n` records (all when None), oldest first, as (level, message)."""
        records = list(self.records)
        if n is not None:
            records = records[-n:] if n > 0 else []
        return records

    def attach(self, *names: str) -> None:
        for name in names:
            logger = logging.getLogger(name)
            logger.addHandler(self)
            self._loggers.append(logger)

    def detach(self) -> None:
        for logger in self._loggers:
            logger.removeHandler(self)
        self._loggers.clear()
