"""What a worker's task threads are doing right now: the stacks of running sync tasks.

A thread runs a task inside `executor.run_job`; the frames below that call are the
task's own. `running_tasks` finds, for every thread, the job whose `run_job` frame is
on its stack (its local variable ``job``), so nothing has to be recorded on the hot
path of running a task. Used by `Client.call_stack` and by the profiler.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING

from .executor import Job, run_job
from .state import READY

if TYPE_CHECKING:
    from .state import WorkerState

_RUN_JOB_CODE = run_job.__code__
#: The prefix of the names of the threads that run tasks (see `ThreadExecutor`).
TASK_THREAD_PREFIX = "trident-task-"


def task_threads() -> dict[int, str]:
    """Thread id -> name of the threads that run sync tasks in this process."""
    return {
        thread.ident: thread.name
        for thread in threading.enumerate()
        if thread.ident is not None and thread.name.startswith(TASK_THREAD_PREFIX)
    }


def running_tasks(jobs: Mapping[int, Job]) -> list[tuple[Job, list[FrameType]]]:
    """Each job of `jobs` (run id -> job) running in a thread now, with its frames.

    The frames run from the task's function (outermost) to the one executing now.
    Returns a list rather than yielding: ``sys._current_frames()`` holds the caller's
    own frame, so a generator suspended over it would be a reference cycle, and every
    task frame it reached (with the task's arguments and result in its locals) would
    stay alive until the cyclic collector ran, which in a worker is rarely.
    """
    threads = task_threads()
    if not threads:
        return []
    current = sys._current_frames()
    found: list[tuple[Job, list[FrameType]]] = []
    try:
        for ident in threads.keys() & current.keys():
            frames: list[FrameType] = []
            frame: FrameType | None = current[ident]
            while frame is not None and frame.f_code is not _RUN_JOB_CODE:
                frames.append(frame)
                frame = frame.f_back
            if frame is None:
                continue  # the thread waits for its next job
            job = frame.f_locals.get("job")
            if isinstance(job, Job) and jobs.get(job.run_id) is job and frames:
                frames.reverse()
                found.append((job, frames))
    finally:
        current.clear()
        frame = None
    return found


def format_stack(frames: list[FrameType]) -> list[str]:
    """Frames as `traceback.format_list` renders them, outermost first."""
    summary = traceback.StackSummary.extract(
        ((frame, frame.f_lineno) for frame in frames), capture_locals=False
    )
    return summary.format()


def call_stacks(jobs: Mapping[int, Job], keys: list[str] | None) -> dict[str, list[str]]:
    """``{key: [frame, ...]}`` for the running sync tasks among `keys` (all when None)."""
    wanted = set(keys) if keys is not None else None
    return {
        job.key: format_stack(frames)
        for job, frames in running_tasks(jobs)
        if wanted is None or job.key in wanted
    }


def task_queue(state: WorkerState) -> list[str]:
    """The keys of the tasks waiting for a thread, in the order they will start."""
    ready = [ts for ts in state.tasks.values() if ts.state == READY]
    ready.sort(key=lambda ts: ts.priority)
    return [ts.key for ts in ready]
