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

from .._lending import lending
from .._public import publish

if TYPE_CHECKING:
    from .actor import Worker
    from .executor import Job

_current: contextvars.ContextVar[tuple[Worker, str, Job | None] | None] = contextvars.ContextVar(
    "trident_task", default=None
)


@contextmanager
def task_context(worker: Worker, key: str, job: Job | None = None) -> Iterator[None]:
    """Mark the calling thread or trio task as running `key` on `worker`.

    `job` is the run of a task (actor methods have none). The block also runs for
    `worker` as the lender of its client (`trident._lending`).
    """
    token = _current.set((worker, key, job))
    try:
        with lending(worker):
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


def current_job() -> tuple[Worker, Job] | None:
    """The worker and the run of the task the calling code runs in, if any."""
    current = _current.get()
    if current is None or current[2] is None:
        return None
    return current[0], current[2]


publish(globals())
