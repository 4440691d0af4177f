"""Records nested inside other messages; none of them is sent on its own."""

from __future__ import annotations

from ..registry import message
from ..serialize import Serialized


@message("wi")
class WorkerInfo:
    """What clients and the scheduler know about one worker (in `RegisterWorker`,
    `ClientWelcome`, `WorkersChanged`)."""

    address: str
    name: str
    nthreads: int
    memory_limit: int
    resources: dict[str, float]


@message("actor-options")
class ActorOptions:
    """How to host an actor (`Client.submit(..., actor=True)`, in `TaskSpec` and `RunTask`):
    restarts after worker loss, concurrency of async methods."""

    max_restarts: int
    max_concurrency: int


@message("task")
class TaskSpec:
    """One task of a graph submitted by a client (in `UpdateGraph`).

    `function` names a function token defined in the same or an earlier `UpdateGraph`.
    `args` is `(args, kwargs)` pickled with futures replaced by their keys, which are
    listed in `dependencies`. `timeout` is a deadline in seconds enforced on the worker;
    `actor` makes the task construct an actor (the function is the class).
    """

    key: str
    function: str
    args: Serialized
    dependencies: list[str]
    priority: int
    retries: int
    workers: list[str] | None
    allow_other_workers: bool
    resources: dict[str, float] | None
    timeout: float | None
    actor: ActorOptions | None


@message("error")
class ErrorInfo:
    """A task's exception, pickled, with its traceback and a plain-text rendering (in
    `TaskFailed`, `KeyErred`, `ActorReply`, `RunResult`)."""

    exception: Serialized
    traceback: Serialized | None
    text: str
    worker: str


@message("out")
class OutputEntry:
    """One piece of a task's output (in `TaskOutput`).

    `stream` is ``"stdout"`` or ``"stderr"`` for printed text (`text` is one line
    without its newline) or ``"log"`` for a logging record, whose `level` and `logger`
    are set.
    """

    key: str
    stream: str
    text: str
    level: int
    logger: str
    time: float


@message("stored")
class StoredValue:
    """A user value kept by the scheduler (queues, variables, topics, datasets): pickled
    with every `Future` inside replaced by its key; `keys` lists those keys (the scheduler
    keeps them alive while it stores it)."""

    payload: Serialized
    keys: list[str]


#: Records that travel only inside other messages.
Record = WorkerInfo | ActorOptions | TaskSpec | ErrorInfo | OutputEntry | StoredValue
