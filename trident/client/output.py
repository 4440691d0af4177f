"""`OutputPrinter`: shows the forwarded output of tasks in the client's process.

Printed text goes to the client's ``sys.stdout`` / ``sys.stderr``, one line per line
the task printed; logging records are emitted again on the client's logger of the same
name (so the client's logging configuration decides where they go). Both are prefixed
with ``[worker key]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from ..protocol import messages as m

logger = logging.getLogger("trident.client")


class OutputPrinter:
    """Where a client sends `TaskOutput` entries, with the loggers it forwards.

    `loggers` maps a logger name ("" for the root, meaning every logger) to the lowest
    level forwarded from it and its children.
    """

    def __init__(self) -> None:
        self.loggers: dict[str, int] = {}

    def forward(self, logger_name: str | None, level: int, *, enabled: bool) -> bool | None:
        """Start (at `level`) or stop forwarding `logger_name` and its children (None:
        the root, meaning all). Returns whether anything is forwarded now when that
        changed, else None. Not thread-safe: the client holds its lock."""
        name = logger_name or ""
        was_on = bool(self.loggers)
        if enabled:
            self.loggers[name] = level
        else:
            self.loggers.pop(name, None)
        now_on = bool(self.loggers)
        return now_on if now_on != was_on else None

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

    def show_message(
        self, msg: m.TaskOutput, workers: Mapping[str, m.WorkerInfo], client_id: str
    ) -> None:
        """Show a `TaskOutput`, naming its worker by name when `workers` knows it; a
        failure to show it is logged (naming `client_id`), never raised."""
        info = workers.get(msg.worker)
        label = info.name if info is not None and info.name else msg.worker
        try:
            self.show(label, msg.entries)
        except Exception:
            logger.exception("client %s could not show task output", client_id)

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
