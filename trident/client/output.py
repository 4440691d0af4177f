"""`OutputPrinter`: shows the forwarded output of tasks in the client's process.

Printed text goes to the client's ``sys.stdout`` / ``sys.stderr``, one line per line
the task printed; logging records are emitted again on the client's logger of the same
name (so the client's logging configuration decides where they go). Both are prefixed
with ``[worker key]``.
"""

from __future__ import annotations

import logging
import sys

from ..protocol import messages as m


class OutputPrinter:
    """Where a client sends `TaskOutput` entries, with the loggers it forwards.

    `loggers` maps a logger name ("" for the root, meaning every logger) to the lowest
    level forwarded from it and its children.
    """

    def __init__(self) -> None:
        self.loggers: dict[str, int] = {}

    def forwards(self, logger_name: str, level: int) -> bool:
        for name, minimum in list(self.loggers.items()):
            if level >= minimum and (
                not name or logger_name == name or logger_name.startswith(name + ".")
            ):
                return True
        return False

    def show(self, worker: str, entries: list[m.OutputEntry]) -> None:
        """Print or log each entry, prefixed with `worker` and its task's key."""
        for entry in entries:
            prefix = f"[{worker} {entry.key}]"
            if entry.stream == "log":
                if self.forwards(entry.logger, entry.level):
                    self._log(prefix, entry)
                continue
            stream = sys.stderr if entry.stream == "stderr" else sys.stdout
            try:
                stream.write(f"{prefix} {entry.text}\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # the client's stream is closed: nowhere to show it

    @staticmethod
    def _log(prefix: str, entry: m.OutputEntry) -> None:
        logger = logging.getLogger(entry.logger or None)
        if not logger.isEnabledFor(entry.level):
            return
        record = logger.makeRecord(
            logger.name, entry.level, "(task)", 0, f"{prefix} {entry.text}", (), None
        )
        record.created = entry.time
        record.msecs = (entry.time % 1) * 1000
        logger.handle(record)
