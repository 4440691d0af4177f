"""Running task functions: a pool of long-lived threads for sync functions, trio tasks
for ``async def`` functions, and the packaging of results and errors.

Threads are owned by `ThreadExecutor.run`, which starts them and, when cancelled, stops
them and waits (briefly) for them to finish. Outcomes travel back to the event loop
through a `Mailbox`: a thread appends its outcome and schedules a delivery only when
none is pending, so a burst of short tasks costs one wakeup of the loop.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from .._exceptions import Reschedule
from ..protocol.failures import error_info
from ..protocol.messages import ErrorInfo
from ..protocol.serialize import Serialized, dumps, loads_task_args, sizeof
from ..protocol.unpicklable import pickling_error, surely_picklable, unpicklable_error
from ..sizes import format_bytes
from .context import task_context
from .output import OutputCollector, capture_output

if TYPE_CHECKING:
    from .actor import Worker
    from .asyncio_actors import AsyncioActorLoop

logger = logging.getLogger("trident.worker")

#: Results up to this size travel inside the completion message when asked for.
INLINE_RESULT_MAX_BYTES = 64 * 1024
#: How long closing waits for running sync tasks before leaving their threads behind.
SHUTDOWN_GRACE_SECONDS = 2.0

T = TypeVar("T")


#: The error of a run that raised `Reschedule`: the worker hands the task back.
RESCHEDULED = ErrorInfo(dumps(None), None, "Reschedule", "")


def failure(exc: BaseException, worker: str) -> ErrorInfo:
    """What a run that raised `exc` reports (`RESCHEDULED` for `Reschedule`)."""
    if isinstance(exc, Reschedule):
        return RESCHEDULED
    return error_info(exc, worker)


class Mailbox(Generic[T]):
    """Items posted from any thread, delivered in batches to a callback in the trio loop."""

    def __init__(self, deliver: Callable[[list[T]], None]):
        self._deliver = deliver
        self._items: deque[T] = deque()
        self._pending = False
        self._token: trio.lowlevel.TrioToken | None = None

    def bind(self) -> None:
        """Attach to the running trio loop (call from inside it)."""
        self._token = trio.lowlevel.current_trio_token()

    def post(self, item: T) -> None:
        """Queue `item` for delivery; safe from any thread. Dropped once the loop ended."""
        self._items.append(item)
        if not self._pending:
            self._pending = True
            try:
                assert self._token is not None
                self._token.run_sync_soon(self._drain)
            except trio.RunFinishedError:
                pass

    def _drain(self) -> None:
        self._pending = False
        batch = []
        items = self._items
        while items:
            batch.append(items.popleft())
        if batch:
            self._deliver(batch)


class Job:
    """One run of one task; `cancelled` may be set from the event loop at any time.

    With `output` set, what the task prints and logs is captured there.
    """

    __slots__ = (
        "actor",
        "args",
        "cancelled",
        "data",
        "function",
        "inline",
        "key",
        "output",
        "run_id",
        "scope",
        "seceded",
    )

    def __init__(
        self,
        key: str,
        run_id: int,
        function: Callable[..., Any],
        args: Serialized,
        data: Mapping[str, Any],
        inline: bool,
        output: OutputCollector | None = None,
        *,
        actor: bool = False,
    ):
        self.key = key
        self.run_id = run_id
        self.function = function
        self.args = args
        self.data = data
        self.inline = inline
        self.output = output
        #: the function builds an actor, whose instance never leaves the worker
        self.actor = actor
        self.cancelled = False
        self.scope: trio.CancelScope | None = None
        #: the task left its thread slot (`secede`) and has not rejoined
        self.seceded = False


class Outcome:
    """What became of a job: a value, an error, or nothing (skipped or cancelled)."""

    __slots__ = (
        "error",
        "key",
        "nbytes",
        "payload",
        "run_id",
        "skipped",
        "start",
        "stop",
        "type_name",
        "value",
    )

    def __init__(self, job: Job):
        self.key = job.key
        self.run_id = job.run_id
        self.value: Any = None
        self.nbytes = 0
        self.type_name = ""
        self.payload: Serialized | None = None
        self.error: ErrorInfo | None = None
        self.skipped = False
        self.start = 0.0
        self.stop = 0.0


def complete(outcome: Outcome, value: Any, job: Job, worker: str, memory_limit: int = 0) -> None:
    """Record `value` as the job's result (size, type, and the inline payload if asked).

    A result that cannot be pickled fails the task at once, with a `SerializationError`
    naming the part that fails, rather than failing whoever fetches it later; so does a
    result larger than the worker's whole `memory_limit` (a `MemoryError`), which the
    worker could neither keep nor send. An actor instance stays on its worker and is
    not checked.
    """
    outcome.value = value
    outcome.nbytes = sizeof(value)
    outcome.type_name = type(value).__qualname__
    if job.actor:
        return
    if memory_limit and outcome.nbytes > memory_limit:
        outcome.value = None
        too_large = MemoryError(
            f"task {job.key!r} returned {format_bytes(outcome.nbytes)}, more than the memory "
            f"limit of its worker ({format_bytes(memory_limit)})"
        )
        outcome.error = error_info(too_large, worker)
        return
    if job.inline and outcome.nbytes <= INLINE_RESULT_MAX_BYTES:
        try:
            payload = dumps(value)
        except Exception as exc:
            outcome.error = _unpicklable_result(job.key, value, exc, worker)
            return
        if payload.nbytes <= INLINE_RESULT_MAX_BYTES:
            outcome.payload = payload
        return
    error = None if surely_picklable(value) else pickling_error(value)
    if error is not None:
        outcome.error = _unpicklable_result(job.key, value, error, worker)


def _unpicklable_result(key: str, value: Any, error: Exception, worker: str) -> ErrorInfo:
    exc = unpicklable_error(f"the result of task {key!r}", {"result": value}, error)
    return error_info(exc, worker)


def run_job(job: Job, worker: Worker) -> Outcome:
    """Run a sync job to completion in the calling thread (never raises)."""
    outcome = Outcome(job)
    if job.cancelled:
        outcome.skipped = True
        return outcome
    outcome.start = time.time()
    with task_context(worker, job.key, job):
        try:
            args, kwargs = loads_task_args(job.args, job.data)
            if job.output is None:
                value = job.function(*args, **kwargs)
            else:
                with capture_output(job.key, job.output):
                    value = job.function(*args, **kwargs)
        except BaseException as exc:
            outcome.stop = time.time()
            outcome.error = failure(exc, worker.address)
            return outcome
    outcome.stop = time.time()
    complete(outcome, value, job, worker.address, worker.memory_limit)
    return outcome


@contextlib.contextmanager
def _in_task(worker: Worker, job: Job) -> Iterator[None]:
    with task_context(worker, job.key, job), capture_output(job.key, job.output):
        yield


async def run_async_job(
    job: Job, worker: Worker, asyncio_loop: AsyncioActorLoop | None = None
) -> Outcome:
    """Run an ``async def`` job inside its own cancel scope: in the current trio task,
    or in `asyncio_loop` (a function written for asyncio). Never raises."""
    outcome = Outcome(job)
    outcome.start = time.time()
    with trio.CancelScope() as scope, task_context(worker, job.key, job):
        job.scope = scope
        if job.cancelled:
            scope.cancel()
        try:
            args, kwargs = loads_task_args(job.args, job.data)
            if asyncio_loop is not None:
                call = functools.partial(job.function, *args, **kwargs)
                value = await asyncio_loop.run(call, lambda: _in_task(worker, job))
            else:
                with capture_output(job.key, job.output):
                    value = await job.function(*args, **kwargs)
        except Exception as exc:
            outcome.stop = time.time()
            outcome.error = failure(exc, worker.address)
            return outcome
    outcome.stop = time.time()
    if scope.cancelled_caught:
        outcome.skipped = True
        return outcome
    complete(outcome, value, job, worker.address, worker.memory_limit)
    return outcome


_STOP = object()


class ThreadExecutor:
    """`nthreads` long-lived threads running sync jobs in submission order.

    A task that secedes keeps its thread to itself: `add_thread` starts another one to
    serve the queue, and the seceded thread ends with its task. When the task rejoins,
    `retire_thread` makes one thread leave the pool instead. Call both from the loop.
    """

    def __init__(self, nthreads: int, deliver: Callable[[list[Outcome]], None], worker: Worker):
        self.nthreads = nthreads
        self._worker = worker
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._mailbox: Mailbox[Outcome] = Mailbox(deliver)
        self._threads: list[threading.Thread] = []
        self._thread_numbers = itertools.count()
        self._closed = False

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def _thread_main(self) -> None:
        jobs = self._jobs
        post = self._mailbox.post
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            post(run_job(job, self._worker))
            seceded = job.seceded
            # Not kept while waiting for the next job: it holds the task's function and
            # pickled arguments, which may be large (a callable carrying data) and
            # forgotten by the worker meanwhile.
            del job
            if seceded:
                return  # another thread took this one's place in the pool

    def _start_thread(self) -> None:
        name = f"trident-task-{self._worker.name}-{next(self._thread_numbers)}"
        thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def add_thread(self) -> None:
        """A running task seceded: start a thread to take its place in the pool."""
        if not self._closed:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._start_thread()

    def retire_thread(self) -> None:
        """A seceded task rejoined: one thread of the pool ends after its current job."""
        self._jobs.put(_STOP)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the threads: start them, and on cancellation stop and join them."""
        self._mailbox.bind()
        for _ in range(self.nthreads):
            self._start_thread()
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(_STOP)
            with trio.CancelScope(shield=True):
                await join_threads(self._threads, SHUTDOWN_GRACE_SECONDS)


async def join_threads(threads: list[threading.Thread], grace: float) -> None:
    """Wait up to `grace` seconds for `threads` to end; log the ones that do not.

    The joins block one of trio's worker threads, not the loop (a checkpoint; cancelling
    it stops the wait, not the threads).
    """
    deadline = time.monotonic() + grace

    def join_all() -> None:
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    await trio.to_thread.run_sync(join_all, abandon_on_cancel=True)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        logger.warning("threads still running at shutdown: %s", stuck)
