"""`secede` and `rejoin`: a running task steps out of its worker's thread slots and back.

A worker runs at most `nthreads` tasks at a time. A task that waits for other tasks
(its own subtasks, typically) would hold a slot while doing nothing; after `secede()`
it no longer counts, so another task starts in its place (a fresh thread takes its
place in the pool). `rejoin()` waits for a free slot and counts the task again;
rejoining tasks get slots before new tasks start.

Waiting for futures that are not done through the worker's client (`Future.result`,
`Client.gather`, `wait`, `as_completed`, and their ``await`` forms in ``async def``
tasks) secedes and rejoins around the wait by itself (`seceded_while_waiting`), so deep
recursive fan-outs never deadlock, even with one thread per worker.

A seceded task is still the worker's task: its deadline (`timeout=`) applies, and
cancelling it discards its result as usual. Because it rejoins before it goes on after
a wait, a running sync task's thread still counts as busy until its function returns
(see `docs/cancellation.md`); only code between an explicit `secede()` and `rejoin()`
runs outside the count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .._public import publish
from .context import current_job

if TYPE_CHECKING:
    from .actor import Worker
    from .executor import Job


def _running_job() -> tuple[Worker, Job]:
    found = current_job()
    if found is None:
        raise ValueError("secede() and rejoin() work only inside a task running on a worker")
    return found


def secede() -> None:
    """Have the running task leave its worker's thread slots (see the module docstring).

    Another task starts in its place; the task goes on running. A no-op if the task
    seceded already. Raises `ValueError` outside a task. In an ``async def`` task the
    slot is given up the same way (no thread is involved).
    """
    worker, job = _running_job()
    if not job.seceded:
        job.seceded = True
        worker.secession.secede(job)


def rejoin() -> None:
    """Have a seceded task count against its worker's thread slots again.

    In a task's thread this blocks until a slot is free; in an ``async def`` task it
    returns at once and the task takes the next free slot. A no-op if the task did not
    secede. Raises `ValueError` outside a task.
    """
    worker, job = _running_job()
    if job.seceded:
        worker.secession.rejoin(job)


@contextmanager
def seceded_while_waiting() -> Iterator[None]:
    """Secede around a wait for futures in a task; rejoin after it.

    Does nothing outside tasks, and in a task that seceded already (an outer wait, or
    an explicit `secede()`).
    """
    found = current_job()
    if found is None or found[1].seceded:
        yield
        return
    worker, job = found
    job.seceded = True
    worker.secession.secede(job)
    try:
        yield
    finally:
        worker.secession.rejoin(job)


@contextmanager
def seceded_for_block() -> Iterator[None]:
    """`worker_client`'s block: secede for it and rejoin after.

    Does nothing outside a task's run (outside tasks and in actor methods).
    """
    if current_job() is None:
        yield
        return
    secede()
    try:
        yield
    finally:
        rejoin()


publish(globals())
