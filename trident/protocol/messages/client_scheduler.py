"""Messages between a client and the scheduler, both ways."""

from __future__ import annotations

from ..registry import message
from ..serialize import Serialized
from .common import RunFunction, RunResult
from .coordination import CoordinationRequest, Published
from .diagnostics import DiagnosticsRequest, EventLogged
from .records import ErrorInfo, TaskSpec, WorkerInfo

#: The clients workers run for their tasks (`get_client`, actor handles) register under
#: names that start with this; summaries count them apart from the users' clients.
WORKER_CLIENT_PREFIX = "worker-client-"


# --- client -> scheduler: the session ---


@message("reg-client")
class RegisterClient:
    """First message of a client after the handshake (`Client` start-up)."""

    client_id: str
    name: str


@message("resume-client")
class ResumeClient:
    """A client that lost its connection registers again (instead of `RegisterClient`;
    `trident.client.reconnection`).

    `keys` are the keys it holds futures for and whose submission reached the scheduler
    before. The scheduler answers as it answers `RegisterClient`, then reports each
    key's outcome (`KeyDone`, `KeyErred`, `KeysLost`; unknown keys fail with
    `SchedulerLostError`), then `ClientResumed`. Messages queued by the client while it
    was disconnected follow once it read `ClientResumed`.
    """

    client_id: str
    name: str
    keys: list[str]


@message("bye")
class Goodbye:
    """`Client.close`: the client closes on purpose; the connection ends after it.

    The scheduler ends any peer's connection at a `Goodbye`, but only clients send one.
    """

    reason: str


@message("forward-output")
class ForwardOutput:
    """`Client.forward_logging`: start (or stop) sending me the output of the tasks I want."""

    enabled: bool


# --- client -> scheduler: tasks and futures ---


@message("graph")
class UpdateGraph:
    """Submit tasks (`Client.submit`, `Client.map`) and define the functions they use.

    Every task in `tasks` becomes wanted by the sending client.
    """

    functions: dict[str, Serialized]
    tasks: list[TaskSpec]


@message("release")
class ReleaseKeys:
    """The client dropped its last future for these keys (`Future` reference counting)."""

    keys: list[str]


@message("cancel")
class CancelKeys:
    """`Client.cancel`: stop these keys; `force` also cancels them for other clients."""

    keys: list[str]
    force: bool


@message("ff")
class FireAndForget:
    """`fire_and_forget`: run these keys to completion even with no client wanting them."""

    keys: list[str]


@message("scattered")
class RegisterScattered:
    """`Client.scatter`: the client stored these keys on workers; the client wants them."""

    who_has: dict[str, list[str]]
    nbytes: dict[str, int]
    type_names: dict[str, str]


@message("want")
class WantKeys:
    """A client holds futures for keys it did not submit (``Future(key)``, unpickling).

    The scheduler answers with each key's current outcome; unknown keys are reported
    lost.
    """

    keys: list[str]


@message("restart")
class RestartRequest:
    """Client -> scheduler (`Client.restart`): forget every task, restart every worker
    that has a nanny. Answered by a `Reply` once every such worker was replaced, or at
    once without `wait_for_workers`."""

    request_id: int
    wait_for_workers: bool


@message("restart-workers")
class RestartWorkersRequest:
    """Client -> scheduler (`Client.restart_workers`): have the nannies of `workers`
    (addresses) replace them; other tasks and workers are left alone. Answered by a
    `Reply` with ``{address: "OK"}`` once each was replaced, or an error naming workers
    unknown or without a nanny (then none is restarted)."""

    request_id: int
    workers: list[str]


# --- client -> scheduler: questions about the cluster ---


@message("who-has")
class WhoHasRequest:
    """`Client.who_has`, `Client.gather`: which workers hold each key (every key the
    scheduler knows when `keys` is None); answered by a `Reply` with a key -> addresses
    map."""

    request_id: int
    keys: list[str] | None


@message("info")
class InfoRequest:
    """`Client.scheduler_info`; answered by a `Reply`."""

    request_id: int


@message("error-cause")
class ErrorCause:
    """`Client.get_futures_error`: which task caused the failure of erred key `key`.

    Answered by a `Reply` with ``{"key", "function", "args", "dependencies"}`` of that
    task (function and args are payloads), or an error when there is none.
    """

    request_id: int
    key: str


@message("has-what")
class HasWhatRequest:
    """`Client.has_what`: the keys each worker holds (all workers when `workers` is None).

    Answered by a `Reply` with ``{address: [key, ...]}``.
    """

    request_id: int
    workers: list[str] | None


@message("processing")
class ProcessingRequest:
    """`Client.processing`: the keys assigned to each worker and not finished yet.

    Answered by a `Reply` with ``{address: [key, ...]}``.
    """

    request_id: int
    workers: list[str] | None


@message("graph-progress")
class GraphProgress:
    """`trident.progress` of a collection: how far the tasks behind `keys` are (the keys
    and every task they depend on, directly or not).

    Answered by a `Reply` with ``{prefix: [done, total, erred]}``; a task is done
    unless it is waiting, queued, without a worker or processing.
    """

    request_id: int
    keys: list[str]


@message("nbytes")
class NbytesRequest:
    """`Client.nbytes`: the size of the keys in memory (all of them when `keys` is None).

    Answered by a `Reply` with ``{key: bytes}``, or ``{prefix: bytes}`` with `summary`.
    """

    request_id: int
    keys: list[str] | None
    summary: bool


# --- client -> scheduler: cluster administration ---


@message("run-on-scheduler")
class RunOnScheduler:
    """Client -> scheduler (`Client.run_on_scheduler`): run `call` in the scheduler's
    process; answered by a `RunResult` with the request id of `call`."""

    call: RunFunction


@message("run-on-nannies")
class RunOnNannies:
    """Client -> scheduler (`Client.run(..., nanny=True)`): run `call` in the nannies of
    `workers` (all workers with a nanny when None). Answered by `RunResults`."""

    call: RunFunction
    workers: list[str] | None


@message("replicate")
class ReplicateRequest:
    """`Client.replicate`: keep `n` copies of each of `keys` among `workers` (every
    worker when None; `n` None: on all of them), adding or removing copies. Answered by a
    `Reply` (None) once done."""

    request_id: int
    keys: list[str]
    n: int | None
    workers: list[str] | None


@message("rebalance")
class RebalanceRequest:
    """`Client.rebalance`: move `keys` (all keys when None) between `workers` (all when
    None) so each holds about the same bytes. Answered by a `Reply` (None) once done."""

    request_id: int
    keys: list[str] | None
    workers: list[str] | None


@message("retire")
class RetireWorkersRequest:
    """`Client.retire_workers`: copy the data only `workers` hold to other workers, then
    remove them (None: the idle workers the cluster can spare). `close` also stops their
    nannies. Answered by a `Reply` with ``{address: worker info}`` of the retired ones."""

    request_id: int
    workers: list[str] | None
    close: bool


@message("upload")
class UploadFile:
    """`Client.upload_file`: store a ``.py``, ``.zip`` or ``.egg`` file on every worker,
    now and joining later, and import it (unless not `load`). Answered by a `Reply` once
    every current worker stored it (`error` names the workers that failed)."""

    request_id: int
    filename: str
    data: bytes
    load: bool


@message("register-plugin")
class RegisterPlugin:
    """`Client.register_plugin`: run `plugin` (pickled) on every worker (`kind`
    ``"worker"``) or nanny (``"nanny"``), now and joining later, or in the scheduler
    (``"scheduler"``), under `name`; a plugin of that name is replaced (torn down
    first), unless `idempotent`: then nothing happens. Answered by `PluginResults`."""

    request_id: int
    kind: str
    name: str
    plugin: Serialized
    idempotent: bool


@message("unregister-plugin")
class UnregisterPlugin:
    """`Client.unregister_worker_plugin` (and the scheduler one): tear the plugin `name`
    of `kind` down everywhere and stop sending it to newcomers. Answered by
    `PluginResults` (its `error` a `ValueError` when there is no such plugin)."""

    request_id: int
    kind: str
    name: str


@message("story")
class StoryRequest:
    """`Client.story`: the scheduler's recent transitions of `keys`. Answered by a `Reply`
    with ``[[key, start, finish, stimulus id, time], ...]``, oldest first."""

    request_id: int
    keys: list[str]


# --- scheduler -> client ---


@message("client-welcome")
class ClientWelcome:
    """Answer to `RegisterClient` (and `ResumeClient`): the scheduler's id and the current
    workers."""

    scheduler_id: str
    workers: list[WorkerInfo]


@message("services")
class SchedulerServices:
    """Scheduler -> client, right after `ClientWelcome`: the scheduler's other services.

    `dashboard` is the ``host:port`` the HTTP dashboard listens on, or None.
    """

    dashboard: str | None


@message("client-resumed")
class ClientResumed:
    """Answer to `ResumeClient`. `known`: the scheduler still had the client's record
    (its wanted keys and the functions it defined); otherwise the client starts afresh
    and must define its functions again."""

    known: bool


@message("done")
class KeyDone:
    """A wanted key is in memory (it completes the client's `Future`); small results travel
    inline in `value`."""

    key: str
    type_name: str
    nbytes: int
    value: Serialized | None


@message("erred")
class KeyErred:
    """A wanted key failed (or depends on a key that failed); the client's `Future` raises."""

    key: str
    error: ErrorInfo


@message("cancelled")
class KeysCancelled:
    """These keys were cancelled on the cluster (`Client.cancel`, `Client.restart`, a
    cancelled task group); `reason` says why."""

    keys: list[str]
    reason: str


@message("lost")
class KeysLost:
    """The data of these finished keys is gone (its workers left); they are being
    recomputed."""

    keys: list[str]


@message("no-worker")
class KeysWithoutWorker:
    """These tasks are ready, but no connected worker satisfies their restrictions
    (``workers=``, ``resources=``): they wait in the ``no-worker`` state until one joins.
    Sent once per task to the clients that want it or what depends on it."""

    keys: list[str]


@message("workers")
class WorkersChanged:
    """Workers joined or left the cluster (keeps `Client.scheduler_info` and
    `wait_for_workers` current)."""

    added: list[WorkerInfo]
    removed: list[str]


@message("run-results")
class RunResults:
    """The outcome of a `RunOnNannies` (`Client.run(..., nanny=True)`), by worker address."""

    request_id: int
    results: dict[str, RunResult]


@message("plugin-results")
class PluginResults:
    """Answer to `RegisterPlugin` and `UnregisterPlugin`: for each worker (or nanny, by
    its worker's address) that ran the hook, what it raised (None: it worked); `error`
    is set when the scheduler refused or the scheduler plugin's hook raised."""

    request_id: int
    results: dict[str, ErrorInfo | None]
    error: ErrorInfo | None


@message("dump-cluster")
class DumpClusterState:
    """`Client.dump_cluster_state`: the scheduler's state and every worker's, for
    post-mortems. Answered by a `Reply` with ``{"scheduler": {...}, "workers": {address:
    {...}}}`` once every worker connected at the time answered (or left); `exclude`
    names task fields to leave out of every task's record."""

    request_id: int
    exclude: list[str]


#: Everything a client sends the scheduler (besides `Common` messages).
ClientToScheduler = (
    RegisterClient
    | ResumeClient
    | Goodbye
    | ForwardOutput
    | UpdateGraph
    | ReleaseKeys
    | CancelKeys
    | FireAndForget
    | RegisterScattered
    | WantKeys
    | RestartRequest
    | RestartWorkersRequest
    | WhoHasRequest
    | InfoRequest
    | ErrorCause
    | HasWhatRequest
    | ProcessingRequest
    | NbytesRequest
    | GraphProgress
    | RunOnScheduler
    | RunOnNannies
    | ReplicateRequest
    | RebalanceRequest
    | RetireWorkersRequest
    | UploadFile
    | RegisterPlugin
    | UnregisterPlugin
    | StoryRequest
    | DumpClusterState
    | CoordinationRequest
    | DiagnosticsRequest
)

#: Everything the scheduler sends a client (besides `Common` messages).
SchedulerToClient = (
    ClientWelcome
    | SchedulerServices
    | ClientResumed
    | KeyDone
    | KeyErred
    | KeysCancelled
    | KeysLost
    | KeysWithoutWorker
    | WorkersChanged
    | RunResults
    | PluginResults
    | Published
    | EventLogged
)
