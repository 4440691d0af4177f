"""Capturing what tasks print and log, per task, for forwarding to clients.

While some client forwards output (`Client.forward_logging`), the worker process's
``sys.stdout`` and ``sys.stderr`` are `StreamRouter`s and the root logger has a
`_TaskLogHandler`. Both look at a context variable naming the task that is running in
the current thread (sync tasks run in executor threads) or trio task (async tasks run
in the worker's loop), so the output of concurrent tasks never mixes. Text written
outside any task goes to the original stream unchanged.

Captured lines collect in the worker's `OutputCollector`, which the worker drains into
`TaskOutput` messages: periodically, and before it reports a task finished.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextvars import ContextVar
from typing import Any, TextIO

from ..protocol.messages import OutputEntry

#: The capture of the task running in this thread or trio task, if any.
_current: ContextVar[TaskCapture | None] = ContextVar("trident_task_capture", default=None)

#: A line longer than this is cut into pieces of this size.
MAX_LINE = 16 * 1024
#: Entries kept per worker between drains; beyond it the oldest output is dropped.
MAX_PENDING = 10_000


class OutputCollector:
    """Entries captured from tasks, appended from any thread and drained by the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[OutputEntry] = []
        self.dropped = 0

    def add(self, entry: OutputEntry) -> None:
        with self._lock:
            if len(self._entries) >= MAX_PENDING:
                self._entries.pop(0)
                self.dropped += 1
            self._entries.append(entry)

    def drain(self) -> list[OutputEntry]:
        with self._lock:
            entries, self._entries = self._entries, []
        return entries


class TaskCapture:
    """The output of one task run: whole lines go to the collector as they complete."""

    __slots__ = ("collector", "key", "partial")

    def __init__(self, key: str, collector: OutputCollector):
        self.key = key
        self.collector = collector
        self.partial: dict[str, str] = {}

    def write(self, stream: str, text: str) -> None:
        buffered = self.partial.pop(stream, "") + text
        *lines, rest = buffered.split("\n")
        for line in lines:
            self._add_line(stream, line)
        if len(rest) > MAX_LINE:
            self._add_line(stream, rest)
        elif rest:
            self.partial[stream] = rest

    def _add_line(self, stream: str, line: str) -> None:
        for start in range(0, max(len(line), 1), MAX_LINE):
            self.collector.add(
                OutputEntry(self.key, stream, line[start : start + MAX_LINE], 0, "", time.time())
            )

    def log(self, record: logging.LogRecord, text: str) -> None:
        self.collector.add(
            OutputEntry(self.key, "log", text, record.levelno, record.name, record.created)
        )

    def close(self) -> None:
        """Send what is left of unfinished lines."""
        for stream, rest in self.partial.items():
            self._add_line(stream, rest)
        self.partial.clear()


class capture_output:
    """Context manager: the output of the enclosed code belongs to task `key`.

    With `collector` None it does nothing (the worker is not capturing).
    """

    __slots__ = ("capture", "collector", "key", "token")

    def __init__(self, key: str, collector: OutputCollector | None):
        self.key = key
        self.collector = collector
        self.capture: TaskCapture | None = None
        self.token: Any = None

    def __enter__(self) -> None:
        if self.collector is not None:
            self.capture = TaskCapture(self.key, self.collector)
            self.token = _current.set(self.capture)

    def __exit__(self, *exc: object) -> None:
        if self.capture is not None:
            _current.reset(self.token)
            self.capture.close()


class StreamRouter:
    """Stands in for ``sys.stdout`` / ``sys.stderr``: routes text to the running task.

    Everything else (encoding, ``fileno``, ``isatty``...) is the original stream's.
    """

    def __init__(self, name: str, original: TextIO):
        self.name = name
        self.original = original

    def write(self, text: str) -> int:
        capture = _current.get()
        if capture is None:
            return self.original.write(text)
        capture.write(self.name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current.get() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _TaskLogHandler(logging.Handler):
    """Copies records logged inside a capturing task to that task's capture."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        capture = _current.get()
        if capture is None:
            return
        try:
            capture.log(record, self.format(record))
        except Exception:
            self.handleError(record)


_install_lock = threading.Lock()
_installed = 0
_handler = _TaskLogHandler()


def install() -> None:
    """Start routing this process's output to tasks (reference counted per worker)."""
    global _installed
    with _install_lock:
        _installed += 1
        if _installed > 1:
            return
        if not isinstance(sys.stdout, StreamRouter):
            sys.stdout = StreamRouter("stdout", sys.stdout)
        if not isinstance(sys.stderr, StreamRouter):
            sys.stderr = StreamRouter("stderr", sys.stderr)
        logging.getLogger().addHandler(_handler)


def uninstall() -> None:
    """Undo one `install`; the last one restores the original streams."""
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed > 0:
            return
        _installed = 0
        logging.getLogger().removeHandler(_handler)
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, StreamRouter):
                setattr(sys, name, stream.original)
