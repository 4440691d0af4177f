"""Which worker and which task the calling code runs in.

The executor sets the context around every task (in its thread, or in its trio task for
``async def`` functions) and around every actor method, so `get_worker` and
`current_task_key` work from inside user code.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .actor import Worker

_current: contextvars.ContextVar[tuple[Worker, str] | None] = contextvars.ContextVar(
    "trident_task", default=None
)


@contextmanager
def task_context(worker: Worker, key: str) -> Iterator[None]:
    """Mark the calling thread or trio task as running `key` on `worker`."""
    token = _current.set((worker, key))
    try:
        yield
    finally:
        _current.reset(token)


def get_worker() -> Worker:
    """The worker running the current task. Raises `ValueError` outside of a task."""
    current = _current.get()
    if current is None:
        raise ValueError("get_worker() was called outside of a task running on a worker")
    return current[0]


def current_task_key() -> str | None:
    """The key of the task (or actor) the calling code runs for, if any."""
    current = _current.get()
    return current[1] if current is not None else None


def current_worker() -> Worker | None:
    current = _current.get()
    return current[0] if current is not None else None
