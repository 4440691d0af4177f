"""Running task functions: a pool of long-lived threads for sync functions, trio tasks
for ``async def`` functions, and the packaging of results and errors.

Threads are owned by `ThreadExecutor.run`, which starts them and, when cancelled, stops
them and waits (briefly) for them to finish. Outcomes travel back to the event loop in
batches: a thread that finishes a task appends its outcome to a shared queue and only
schedules a delivery when none is pending, so a burst of short tasks costs one wakeup.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import tblib
import trio

from ..protocol.messages import ErrorInfo
from ..protocol.serialize import Serialized, dumps, loads_task_args, sizeof
from .output import OutputCollector, capture_output

logger = logging.getLogger("trident.worker")

#: Results up to this size travel inside the completion message when asked for.
INLINE_RESULT_MAX_BYTES = 64 * 1024
#: How long closing waits for running sync tasks before leaving their threads behind.
SHUTDOWN_GRACE_SECONDS = 2.0


class RemoteException(Exception):
    """Stands in for a task's exception that could not be pickled or unpickled."""

    def __init__(self, type_name: str, text: str):
        self.type_name = type_name
        self.text = text
        super().__init__(f"{type_name}: {text}")

    def __reduce__(self) -> tuple:
        return (RemoteException, (self.type_name, self.text))


def _user_traceback(exc: BaseException) -> Any:
    """The traceback of `exc` without the executor's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__") == __name__:
        tb = tb.tb_next
    return tb


def error_info(exc: BaseException, worker: str, key: str = "") -> ErrorInfo:
    """Package an exception raised by a task for the trip to the client."""
    tb = _user_traceback(exc)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        payload = dumps(exc)
        pickle.loads(payload.header, buffers=payload.buffers)  # the client must load it too
    except Exception:
        payload = dumps(RemoteException(type(exc).__qualname__, str(exc)))
    tb_payload = None
    if tb is not None:
        try:
            tb_payload = dumps(tblib.Traceback(tb).as_dict())
        except Exception:
            tb_payload = None
    return ErrorInfo(payload, tb_payload, text, worker)


class Job:
    """One execution of one task; `cancelled` may be set from the event loop at any time.

    With `output` set, what the task prints and logs is captured there.
    """

    __slots__ = ("args", "cancelled", "data", "function", "inline", "key", "output", "scope")

    def __init__(
        self,
        key: str,
        function: Callable[..., Any],
        args: Serialized,
        data: Mapping[str, Any],
        inline: bool,
        output: OutputCollector | None = None,
    ):
        self.key = key
        self.function = function
        self.args = args
        self.data = data
        self.inline = inline
        self.output = output
        self.cancelled = False
        self.scope: trio.CancelScope | None = None


class Outcome:
    """What became of a job: a value, an error, or nothing (skipped or cancelled)."""

    __slots__ = (
        "error",
        "key",
        "nbytes",
        "payload",
        "skipped",
        "start",
        "stop",
        "type_name",
        "value",
    )

    def __init__(self, key: str):
        self.key = key
        self.value: Any = None
        self.nbytes = 0
        self.type_name = ""
        self.payload: Serialized | None = None
        self.error: ErrorInfo | None = None
        self.skipped = False
        self.start = 0.0
        self.stop = 0.0


def _complete(outcome: Outcome, value: Any, job: Job, worker: str) -> None:
    outcome.value = value
    outcome.nbytes = sizeof(value)
    outcome.type_name = type(value).__qualname__
    if job.inline and outcome.nbytes <= INLINE_RESULT_MAX_BYTES:
        try:
            payload = dumps(value)
        except Exception as exc:
            outcome.error = error_info(
                TypeError(
                    f"the result of task {job.key!r} ({type(value).__qualname__}) "
                    f"cannot be pickled: {exc}"
                ),
                worker,
            )
            return
        if payload.nbytes <= INLINE_RESULT_MAX_BYTES:
            outcome.payload = payload


def run_job(job: Job, worker: str) -> Outcome:
    """Run a sync job to completion in the calling thread (never raises)."""
    outcome = Outcome(job.key)
    if job.cancelled:
        outcome.skipped = True
        return outcome
    outcome.start = time.time()
    try:
        args, kwargs = loads_task_args(job.args, job.data)
        if job.output is None:
            value = job.function(*args, **kwargs)
        else:
            with capture_output(job.key, job.output):
                value = job.function(*args, **kwargs)
    except BaseException as exc:
        outcome.stop = time.time()
        outcome.error = error_info(exc, worker, job.key)
        return outcome
    outcome.stop = time.time()
    _complete(outcome, value, job, worker)
    return outcome


async def run_async_job(job: Job, worker: str) -> Outcome:
    """Run an ``async def`` job in the current trio task, inside its own cancel scope."""
    outcome = Outcome(job.key)
    outcome.start = time.time()
    with trio.CancelScope() as scope:
        job.scope = scope
        if job.cancelled:
            scope.cancel()
        try:
            args, kwargs = loads_task_args(job.args, job.data)
            with capture_output(job.key, job.output):
                value = await job.function(*args, **kwargs)
        except Exception as exc:
            outcome.stop = time.time()
            outcome.error = error_info(exc, worker, job.key)
            return outcome
    outcome.stop = time.time()
    if scope.cancelled_caught:
        outcome.skipped = True
        return outcome
    _complete(outcome, value, job, worker)
    return outcome


_STOP = object()


class ThreadExecutor:
    """`nthreads` long-lived threads running sync jobs in submission order."""

    def __init__(self, nthreads: int, deliver: Callable[[list[Outcome]], None], worker: str):
        self.nthreads = nthreads
        self._deliver = deliver
        self._worker = worker
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outcomes: deque[Outcome] = deque()
        self._delivery_pending = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._threads: list[threading.Thread] = []

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def _thread_main(self) -> None:
        jobs = self._jobs
        outcomes = self._outcomes
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            outcomes.append(run_job(job, self._worker))
            if not self._delivery_pending:
                self._delivery_pending = True
                try:
                    assert self._token is not None
                    self._token.run_sync_soon(self._drain)
                except trio.RunFinishedError:
                    return

    def _drain(self) -> None:
        self._delivery_pending = False
        batch = []
        outcomes = self._outcomes
        while outcomes:
            batch.append(outcomes.popleft())
        if batch:
            self._deliver(batch)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the threads: start them, and on cancellation stop and join them."""
        self._token = trio.lowlevel.current_trio_token()
        for i in range(self.nthreads):
            thread = threading.Thread(
                target=self._thread_main, name=f"trident-task-{self._worker}-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            for _ in self._threads:
                self._jobs.put(_STOP)
            with trio.CancelScope(shield=True):
                deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
                for thread in self._threads:
                    while thread.is_alive() and time.monotonic() < deadline:
                        await trio.sleep(0.005)
                stuck = [t.name for t in self._threads if t.is_alive()]
                if stuck:
                    logger.warning("task threads still running at shutdown: %s", stuck)
