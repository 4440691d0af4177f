"""What `trident.print` and `trident.warn` called in tasks show on every client.

A task's `trident.print(...)` / `trident.warn(...)` logs an event on the topic
`PRINT_TOPIC` / `WARN_TOPIC`; every client subscribes to both when it starts (as dask's
clients do) and shows each event here: the printed text on this process's stdout or
stderr, the warning through `warnings.warn`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

PRINT_TOPIC = "print"
WARN_TOPIC = "warn"


def show_print(event: tuple[float, Any]) -> None:
    """Print a task's ``{"text", "end", "stderr"}`` event here."""
    _, msg = event
    if not isinstance(msg, dict) or "text" not in msg:
        return  # an event someone else logged on the topic, in another shape
    stream = sys.stderr if msg.get("stderr") else sys.stdout
    print(msg["text"], end=str(msg.get("end", "\n")), file=stream, flush=True)


def show_warning(event: tuple[float, Any]) -> None:
    """Warn here with a task's ``{"message", "category"}`` event."""
    _, msg = event
    if not isinstance(msg, dict) or "message" not in msg:
        return
    category = _warning_category(str(msg.get("category", "UserWarning")))
    warnings.warn(str(msg["message"]), category, stacklevel=1)


def _warning_category(name: str) -> type[Warning]:
    """The builtin warning class named `name` (UserWarning for others)."""
    import builtins

    found = getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, Warning):
        return found
    return UserWarning
