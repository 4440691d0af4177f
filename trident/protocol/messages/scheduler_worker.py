"""Messages between the scheduler and a worker, both ways."""

from __future__ import annotations

from typing import Any

from ..registry import message
from ..serialize import Serialized
from .records import ActorOptions, ErrorInfo, WorkerInfo

# --- scheduler -> worker ---


@message("worker-welcome")
class WorkerWelcome:
    """Answer to `RegisterWorker`: the worker is part of the cluster."""

    scheduler_id: str


@message("def")
class DefineFunction:
    """Sent before the first `RunTask` that uses a function the worker has not seen yet,
    under its content token."""

    token: str
    function: Serialized


@message("run")
class RunTask:
    """Run a task (one the scheduler placed on this worker) once its dependencies are
    local; `who_has` says where to fetch them.

    `priority` orders tasks on the worker (smaller first); `inline_result` asks for the
    result inside `TaskFinished` when it is small; `timeout` is the task's deadline in
    seconds; `actor` means the function is a class to host as an actor, and
    `restarts` how many times this actor was restarted already.
    """

    key: str
    function: str
    args: Serialized
    who_has: dict[str, list[str]]
    priority: list[int]
    inline_result: bool
    resources: dict[str, float] | None
    timeout: float | None
    actor: ActorOptions | None
    restarts: int


@message("free")
class FreeKeys:
    """Forget these keys (no client wants them any more, or `Client.restart`): drop their
    data and any queued work for them."""

    keys: list[str]


@message("forget-functions")
class ForgetFunctions:
    """No task uses these function tokens any more; the worker may drop them."""

    tokens: list[str]


@message("stop-task")
class CancelTask:
    """`Client.cancel` reached this worker's tasks: dropped if queued, interrupted if async,
    discarded if running."""

    keys: list[str]


@message("recall")
class RecallTasks:
    """Work stealing: give back each of these tasks that has not started (waiting for its
    inputs or ready); answered by `TasksRecalled` with the same `request`."""

    request: int
    keys: list[str]


@message("capture-output")
class CaptureOutput:
    """Capture (or stop capturing) the output of running tasks (while some client wants it,
    `ForwardOutput`)."""

    enabled: bool


@message("acquire-replicas")
class AcquireReplicas:
    """`Client.replicate`, `Client.rebalance`, `Client.retire_workers`: fetch a copy of
    each key from the workers listed for it and keep it; answered by `ReplicasAcquired`
    with the same `operation`."""

    operation: int
    who_has: dict[str, list[str]]


@message("store-file")
class StoreFile:
    """`Client.upload_file`: store and import an uploaded file; answered by `FileStored`
    (`upload` 0: a worker that joined later, no answer expected)."""

    upload: int
    filename: str
    data: bytes
    load: bool


# --- worker -> scheduler ---


@message("reg-worker")
class RegisterWorker:
    """First message of a worker after the handshake (`Worker.serve`); `keys` are the
    results it holds already, with their sizes."""

    info: WorkerInfo
    keys: dict[str, int]


@message("finished")
class TaskFinished:
    """A task the worker ran completed; `value` is set when the scheduler asked for it inline."""

    key: str
    nbytes: int
    type_name: str
    start: float
    stop: float
    value: Serialized | None


@message("failed")
class TaskFailed:
    """A task the worker ran raised; the error is sent back to whoever waits for the key."""

    key: str
    error: ErrorInfo
    start: float
    stop: float


@message("seceded")
class TaskSeceded:
    """The running task `key` left its thread slot (`secede`, or a wait on futures in a
    task); the worker has room for one more task."""

    key: str


@message("rescheduled")
class TaskRescheduled:
    """The task `key` raised `Reschedule`; place it again."""

    key: str


@message("missing")
class MissingData:
    """The worker could not fetch `dependency` (for task `key`) from any of `tried`."""

    key: str
    dependency: str
    tried: list[str]


@message("keys-released")
class KeysReleased:
    """The worker dropped these keys on its own (a task it could not run, for example).

    The scheduler handles it; no worker sends it at present.
    """

    keys: list[str]


@message("heartbeat")
class WorkerHeartbeat:
    """The worker's heartbeat loop, about once a second: the worker's load and memory.

    `memory` is the resident set size of the worker's process and `cpu` the percent of
    one core it used since the previous heartbeat (in-process workers report the
    process they share). `stored` counts the bytes of results and fetched inputs the
    worker holds; `spilled` the bytes it moved to disk.
    """

    memory: int
    memory_limit: int
    cpu: float
    executing: int
    ready: int
    stored: int
    spilled: int


@message("recalled")
class TasksRecalled:
    """Answer to `RecallTasks`: the keys the worker dropped before they started
    (`recalled`; it forgot them) and the ones it kept (`kept`: started, finished or
    unknown to it)."""

    request: int
    recalled: list[str]
    kept: list[str]


@message("replicas-acquired")
class ReplicasAcquired:
    """Answer to `AcquireReplicas`: the keys it now holds (`nbytes`) and the
    ones no listed worker could give it (`missing`)."""

    operation: int
    nbytes: dict[str, int]
    missing: list[str]


@message("file-stored")
class FileStored:
    """Answer to `StoreFile`: its outcome (`error` None when it worked)."""

    upload: int
    error: str | None


@message("dump-worker")
class DumpWorkerState:
    """Scheduler -> worker (`Client.dump_cluster_state`): describe your state (tasks,
    slots, event log); answered by `WorkerStateDumped` with the same `dump`."""

    dump: int
    exclude: list[str]


@message("worker-dumped")
class WorkerStateDumped:
    """Worker -> scheduler: the state `DumpWorkerState` asked for, as plain data."""

    dump: int
    state: dict[str, Any]


@message("worker-retiring")
class WorkerRetiring:
    """Worker -> scheduler: this worker's `lifetime` is over (``trident worker
    --lifetime``, before a batch job's walltime ends). The scheduler retires it as
    `Client.retire_workers` with ``close_workers=True`` would (the data only it holds is
    copied to other workers first), and closes it even when that data has nowhere to go."""

    reason: str


#: Everything the scheduler sends a worker (besides `Common` messages).
SchedulerToWorker = (
    WorkerWelcome
    | DefineFunction
    | RunTask
    | FreeKeys
    | ForgetFunctions
    | CancelTask
    | RecallTasks
    | CaptureOutput
    | AcquireReplicas
    | StoreFile
    | DumpWorkerState
)

#: Everything a worker sends the scheduler (besides `Common` messages).
WorkerToScheduler = (
    RegisterWorker
    | TaskFinished
    | TaskFailed
    | TaskSeceded
    | TaskRescheduled
    | MissingData
    | KeysReleased
    | TasksRecalled
    | WorkerHeartbeat
    | ReplicasAcquired
    | FileStored
    | WorkerStateDumped
    | WorkerRetiring
)
