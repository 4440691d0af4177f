"""Messages that travel in more than one direction; each docstring says which.

Every peer hears from the scheduler at least once per heartbeat interval (`Heartbeat`,
or any other message) and clients send one as often; workers send `WorkerHeartbeat`.
A peer silent for longer than its timeout is treated as gone.
"""

from __future__ import annotations

from typing import Any

from ..registry import message
from ..serialize import Serialized
from .records import ErrorInfo, OutputEntry


@message("hb")
class Heartbeat:
    """Client -> scheduler (the client core's heartbeat loop) and scheduler -> every peer
    (`SchedulerState.tick`), once per heartbeat interval."""


@message("reply")
class Reply:
    """Answer to a request message carrying the same `request_id`: scheduler -> client, or
    worker -> peer (`PutData`, `LogsRequest`, `VersionsRequest` and the inspection
    requests)."""

    request_id: int
    value: Any
    error: str | None


@message("logs")
class LogsRequest:
    """`Client.get_scheduler_logs` (client -> scheduler), `Client.get_worker_logs` (peer ->
    worker): ask for the recipient's logs.

    Answered by a `Reply` whose value is the last `n` records (all kept ones when None),
    oldest first, as ``[level name, formatted message]`` pairs.
    """

    request_id: int
    n: int | None


@message("versions")
class VersionsRequest:
    """`Client.get_versions`: client -> scheduler and peer -> each worker; answered by a
    `Reply` with ``{"host": {...}, "packages": {name: version or None}}``."""

    request_id: int
    packages: list[str]


@message("run-function")
class RunFunction:
    """`Client.run`: call `function` with `args` (``(args, kwargs)``, pickled) on a worker
    (peer -> worker), the scheduler (`RunOnScheduler` carries it) or a nanny (scheduler ->
    nanny). A coroutine function is awaited unless `wait` is False. Answered by a
    `RunResult`."""

    request_id: int
    function: Serialized
    args: Serialized
    wait: bool


@message("run-result")
class RunResult:
    """What a `RunFunction` returned (`value`, pickled) or raised (`error`): worker -> peer,
    nanny -> scheduler, scheduler -> client (for `RunOnScheduler`)."""

    request_id: int
    value: Serialized | None
    error: ErrorInfo | None


@message("close-worker")
class CloseWorker:
    """Scheduler -> worker, or -> nanny: stop now (a nanny stops its worker and does not
    restart it). Sent to workers that were retired (`Client.retire_workers`)."""

    reason: str


@message("task-output")
class TaskOutput:
    """Worker -> scheduler -> client: output captured from tasks on `worker` (after
    `CaptureOutput`, for clients that sent `ForwardOutput`)."""

    worker: str
    entries: list[OutputEntry]


@message("setup-plugin")
class SetupPlugin:
    """Scheduler -> worker and scheduler -> nanny (`Client.register_plugin`): unpickle
    `plugin`, tear down any plugin of the same `name`, then run the plugin's ``setup``.
    Answered by `PluginDone` with the same `request` (`request` 0: sent to a newcomer,
    no answer expected)."""

    request: int
    name: str
    plugin: Serialized


@message("teardown-plugin")
class TeardownPlugin:
    """Scheduler -> worker and scheduler -> nanny (`Client.unregister_worker_plugin`):
    run the ``teardown`` of plugin `name` and drop it. Answered by `PluginDone`."""

    request: int
    name: str


@message("plugin-done")
class PluginDone:
    """Worker -> scheduler and nanny -> scheduler: the answer to `SetupPlugin` or
    `TeardownPlugin` `request`; `error` is what the hook raised (None: it worked)."""

    request: int
    error: ErrorInfo | None


#: Messages with more than one direction (the direction unions leave them out).
Common = (
    Heartbeat
    | Reply
    | LogsRequest
    | VersionsRequest
    | RunFunction
    | RunResult
    | CloseWorker
    | TaskOutput
    | SetupPlugin
    | TeardownPlugin
    | PluginDone
)
