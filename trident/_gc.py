"""Garbage-collector settings for processes that hold many small objects.

The scheduler and the workers keep a few records per task; with Python's default
thresholds the cyclic collector then runs every 700 allocations and scans ever more
objects, which costs a third of the scheduler's time at 100,000 tasks (measured with
``benchmarks.simulate``). A higher first-generation threshold removes most of that for
a little more memory held by short-lived cycles.

Processes trident owns (workers, nannies, ``trident up``) call `tune_for_service`. In a
user's process (an in-process cluster or a blocking client's loop) `raised_thresholds`
raises them only while trident runs there, only if they are still Python's defaults,
and restores them afterwards.
"""

from __future__ import annotations

import gc
import threading

PYTHON_DEFAULT = (700, 10, 10)
SERVICE_THRESHOLDS = (50_000, 20, 20)

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


def tune_for_service() -> None:
    """For a process that only runs trident: freeze start-up objects, raise thresholds."""
    gc.freeze()
    gc.set_threshold(*SERVICE_THRESHOLDS)


def acquire() -> None:
    """Raise the thresholds while trident runs in this process (pair with `release`)."""
    global _users, _saved
    with _lock:
        _users += 1
        if _users == 1 and gc.get_threshold() == PYTHON_DEFAULT:
            _saved = gc.get_threshold()
            gc.set_threshold(*SERVICE_THRESHOLDS)


def release() -> None:
    """Undo one `acquire`; the last one restores the user's thresholds."""
    global _users, _saved
    with _lock:
        _users -= 1
        if _users == 0 and _saved is not None:
            if gc.get_threshold() == SERVICE_THRESHOLDS:
                gc.set_threshold(*_saved)
            _saved = None
