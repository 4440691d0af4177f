"""`SecessionBridge`: carries `secede` and `rejoin` from a task's thread to the worker.

`secede()` and `rejoin()` (see `secession`) run in a task's thread, or in the worker's
loop for ``async def`` tasks; `WorkerState` lives in the loop. The bridge hands each
request to the loop (`trio.lowlevel.TrioToken.run_sync_soon`), feeds the state the
event, and makes a rejoining thread wait until the state gives its run a slot back
(`Rejoin`). The thread pool keeps its size: a seceding thread is replaced by a fresh
one, and a rejoined thread retires one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from . import events as ev

if TYPE_CHECKING:
    from .actor import Worker
    from .executor import Job, ThreadExecutor


class SecessionBridge:
    """Secession requests of one worker's tasks (`Worker.secession`)."""

    def __init__(self, worker: Worker):
        self._worker = worker
        #: the thread of the worker's event loop (set once serving)
        self.loop_thread: threading.Thread | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        #: run id -> the event a seceded task's thread waits on to rejoin
        self._waiters: dict[int, threading.Event] = {}
        #: the worker's thread pool (set once serving)
        self.executor: ThreadExecutor | None = None

    def attach(self) -> None:
        """Bind to the running trio loop (call from the worker's loop, when it serves)."""
        self.loop_thread = threading.current_thread()
        self._trio_token = trio.lowlevel.current_trio_token()

    def secede(self, job: Job) -> None:
        """The task of `job` gives its slot up; call from its thread or the loop."""
        if threading.current_thread() is self.loop_thread:
            self._secede_now(job.run_id, threaded=False)
        else:
            self.call_in_loop(self._secede_now, job.run_id, True)

    def _secede_now(self, run_id: int, threaded: bool) -> None:
        worker = self._worker
        if worker.state is None or worker.stopped:
            return
        worker.state.handle(ev.SecedeRequested(run_id, worker.stimulus("secede")))
        if threaded:
            # The seceded thread leaves the pool when its task ends, unless it rejoins
            # (then `rejoined` retires one thread): the pool keeps its size either way.
            assert self.executor is not None
            self.executor.add_thread()
        worker.flush()

    def rejoin(self, job: Job) -> None:
        """The task of `job` wants a slot back: from its thread, wait until it has one;
        from the loop (an async task), ask and return."""
        worker = self._worker
        if threading.current_thread() is self.loop_thread:
            job.seceded = False
            if worker.state is not None and not worker.stopped:
                worker.state.handle(ev.RejoinRequested(job.run_id, worker.stimulus("rejoin")))
                worker.flush()
            return
        granted = threading.Event()
        if self.call_in_loop(self._rejoin_now, job.run_id, granted):
            granted.wait()

    def _rejoin_now(self, run_id: int, granted: threading.Event) -> None:
        worker = self._worker
        if worker.state is None or worker.stopped:
            granted.set()
            return
        self._waiters[run_id] = granted
        worker.state.handle(ev.RejoinRequested(run_id, worker.stimulus("rejoin")))
        worker.flush()

    def rejoined(self, job: Job | None, run_id: int) -> None:
        """The state gave run `run_id` (of `job`, if it still runs) a slot back."""
        if job is not None:
            job.seceded = False
        granted = self._waiters.pop(run_id, None)
        if granted is not None:
            assert self.executor is not None
            self.executor.retire_thread()
            granted.set()

    def release_waiters(self) -> None:
        """The worker stops: let waiting threads finish their tasks (results are dropped)."""
        waiters, self._waiters = self._waiters, {}
        for granted in waiters.values():
            granted.set()

    def call_in_loop(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` soon in the worker's loop; False once the loop is gone."""
        if self._trio_token is None:
            return False
        try:
            self._trio_token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            return False
        return True
