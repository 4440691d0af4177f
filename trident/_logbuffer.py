"""`LogBuffer`: the last log records of one actor, kept in memory for `get_*_logs`.

Several actors can share a process (and a logger) in tests and in-process clusters, so
each buffer keeps only the records logged while its owner is the *current log owner*:
a context variable the actor sets in its own tasks (trio copies it into child tasks).
"""

from __future__ import annotations

import logging
import threading
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
        self._captures: list[str] = []

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

    def attach(self, *names: str, info_from: tuple[str, ...] = ()) -> None:
        """Keep the records of the loggers `names` (and their children).

        The loggers of `info_from` are let through at INFO for this buffer even where
        logging is not configured (Python's default passes WARNING and up), as dask's
        scheduler logs from start-up on; what the user's configuration would not have
        let through still reaches no other handler (see `_InfoCapture`).
        """
        for name in names:
            logger = logging.getLogger(name)
            logger.addHandler(self)
            self._loggers.append(logger)
        for name in info_from:
            _InfoCapture.add(name, self)
            self._captures.append(name)

    def detach(self) -> None:
        for logger in self._loggers:
            logger.removeHandler(self)
        self._loggers.clear()
        for name in self._captures:
            _InfoCapture.remove(name, self)
        self._captures.clear()


class _InfoCapture(logging.Filter):
    """A filter that lowers one logger to INFO for the `LogBuffer`s that ask for it.

    Installed only on a logger whose level is not set (its records then follow its
    parent's level). Records the parent's level lets through pass as before; the others
    (INFO ones the user's configuration would drop) go to the buffers only and stop
    there, so no other handler sees more than it did.
    """

    _installed: dict[str, _InfoCapture] = {}
    _lock = threading.Lock()

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger
        self.buffers: list[LogBuffer] = []

    @classmethod
    def add(cls, name: str, buffer: LogBuffer) -> None:
        with cls._lock:
            capture = cls._installed.get(name)
            if capture is None:
                logger = logging.getLogger(name)
                if logger.level != logging.NOTSET:
                    return  # configured by the user: theirs to decide
                capture = cls._installed[name] = cls(logger)
                logger.addFilter(capture)
                logger.setLevel(logging.INFO)
            capture.buffers.append(buffer)

    @classmethod
    def remove(cls, name: str, buffer: LogBuffer) -> None:
        with cls._lock:
            capture = cls._installed.get(name)
            if capture is None or buffer not in capture.buffers:
                return
            capture.buffers.remove(buffer)
            if not capture.buffers:
                del cls._installed[name]
                capture.logger.removeFilter(capture)
                if capture.logger.level == logging.INFO:
                    capture.logger.setLevel(logging.NOTSET)

    def filter(self, record: logging.LogRecord) -> bool:
        parent = self.logger.parent
        if parent is None or record.levelno >= parent.getEffectiveLevel():
            return True
        for buffer in list(self.buffers):
            buffer.handle(record)
        return False
