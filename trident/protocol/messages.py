"""Every message that crosses a trident connection, grouped by who sends it.

Each class is a frozen, slotted attrs class registered under a short tag (see
`registry.message`). Fields are validated on decode. Keys are strings; user data is
always a `Serialized` payload that only clients and workers unpickle (and the scheduler's
actor for `RunOnScheduler`, from an authenticated client).
"""

from __future__ import annotations

from typing import Any

from .registry import message
from .serialize import Serialized

PROTOCOL_VERSION = 1
#: The clients workers run for their tasks (`get_client`, actor handles) register under
#: names that start with this; summaries count them apart from the users' clients.
WORKER_CLIENT_PREFIX = "worker-client-"

# --- handshake (msgpack only: no payloads are accepted before it completes) -----------


@message("challenge")
class Challenge:
    """Server -> peer, first message on every connection: prove you know the token."""

    nonce: bytes
    server_id: str
    protocol: int
    auth_required: bool


@message("hello")
class Hello:
    """Peer -> server: who the peer is and its proof of the cluster token."""

    role: str  # "client", "worker" or "peer"
    name: str
    protocol: int
    proof: bytes
    nonce: bytes


@message("welcome")
class Welcome:
    """Server -> peer: the handshake succeeded; `proof` lets the peer check the server."""

    proof: bytes
    server_id: str


@message("refused")
class Refused:
    """Server -> peer: the handshake failed, with a reason; the server then closes."""

    reason: str


# --- shared pieces -----------------------------------------------------------------------


@message("wi")
class WorkerInfo:
    """What clients and the scheduler know about one worker."""

    address: str
    name: str
    nthreads: int
    memory_limit: int
    resources: dict[str, float]


@message("actor-options")
class ActorOptions:
    """How to host an actor: restarts after worker loss, concurrency of async methods."""

    max_restarts: int
    max_concurrency: int


@message("task")
class TaskSpec:
    """One task of a graph submitted by a client.

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
    """A task's exception, pickled, with its traceback and a plain-text rendering."""

    exception: Serialized
    traceback: Serialized | None
    text: str
    worker: str


# --- client -> scheduler -------------------------------------------------------------------


@message("reg-client")
class RegisterClient:
    """First message of a client after the handshake."""

    client_id: str
    name: str


@message("graph")
class UpdateGraph:
    """Submit tasks (`Client.submit`, `Client.map`) and define the functions they use.

    Every task in `tasks` becomes wanted by the sending client.
    """

    functions: dict[str, Serialized]
    tasks: list[TaskSpec]


@message("release")
class ReleaseKeys:
    """The client dropped its last future for these keys."""

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


@message("who-has")
class WhoHasRequest:
    """Ask which workers hold each key; answered by a `Reply` with a key -> addresses map."""

    request_id: int
    keys: list[str]


@message("info")
class InfoRequest:
    """Ask for `Client.scheduler_info`; answered by a `Reply`."""

    request_id: int


@message("bye")
class Goodbye:
    """The client (or worker) closes on purpose; the connection ends after it."""

    reason: str


# --- scheduler -> client -------------------------------------------------------------------


@message("client-welcome")
class ClientWelcome:
    """Answer to `RegisterClient`: the scheduler's id and the current workers."""

    scheduler_id: str
    workers: list[WorkerInfo]


@message("done")
class KeyDone:
    """A wanted key is in memory; small results travel inline in `value`."""

    key: str
    type_name: str
    nbytes: int
    value: Serialized | None


@message("erred")
class KeyErred:
    """A wanted key failed (or depends on a key that failed)."""

    key: str
    error: ErrorInfo


@message("cancelled")
class KeysCancelled:
    """These keys were cancelled on the cluster; `reason` says why."""

    keys: list[str]
    reason: str


@message("lost")
class KeysLost:
    """The data of these finished keys is gone; they are being recomputed."""

    keys: list[str]


@message("workers")
class WorkersChanged:
    """Workers joined or left the cluster."""

    added: list[WorkerInfo]
    removed: list[str]


@message("reply")
class Reply:
    """Answer to a request message carrying the same `request_id`."""

    request_id: int
    value: Any
    error: str | None


# --- worker -> scheduler -------------------------------------------------------------------


@message("reg-worker")
class RegisterWorker:
    """First message of a worker after the handshake."""

    info: WorkerInfo
    keys: dict[str, int]


@message("worker-welcome")
class WorkerWelcome:
    """Answer to `RegisterWorker`."""

    scheduler_id: str


@message("finished")
class TaskFinished:
    """A task ran to completion; `value` is set when the scheduler asked for it inline."""

    key: str
    nbytes: int
    type_name: str
    start: float
    stop: float
    value: Serialized | None


@message("failed")
class TaskFailed:
    """A task raised; the error is sent back to whoever waits for the key."""

    key: str
    error: ErrorInfo
    start: float
    stop: float


@message("missing")
class MissingData:
    """The worker could not get `dependency` (for task `key`) from any of `tried`."""

    key: str
    dependency: str
    tried: list[str]


@message("keys-released")
class KeysReleased:
    """The worker dropped these keys on its own (a task it could not run, for example)."""

    keys: list[str]


# --- scheduler -> worker -------------------------------------------------------------------


@message("def")
class DefineFunction:
    """A function the worker has not seen yet, under its content token."""

    token: str
    function: Serialized


@message("run")
class RunTask:
    """Run a task once its dependencies are local; `who_has` says where to fetch them.

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
    """Forget these keys: drop their data and any queued work for them."""

    keys: list[str]


@message("forget-functions")
class ForgetFunctions:
    """No task uses these function tokens any more; the worker may drop them."""

    tokens: list[str]


@message("stop-task")
class CancelTask:
    """Cancel these tasks: dropped if queued, interrupted if async, discarded if running."""

    keys: list[str]


# --- peer (client or worker) -> worker ---------------------------------------------------


@message("get")
class GetData:
    """Ask a worker for the data of some keys; answered by `DataReply`."""

    request_id: int
    keys: list[str]


@message("data")
class DataReply:
    """Answer to `GetData`: the data it has and the keys it does not have."""

    request_id: int
    data: dict[str, Serialized]
    missing: list[str]


@message("put")
class PutData:
    """Store data on a worker (`Client.scatter`); answered by a `Reply` with nbytes."""

    request_id: int
    data: dict[str, Serialized]


# --- actor calls: client or worker -> the worker hosting the actor -------------------


@message("actor-call")
class ActorCall:
    """Call `method` of the actor `key` (or read the attribute, when `attribute` is set).

    `args` is ``(args, kwargs)`` pickled; answered by `ActorReply`.
    """

    request_id: int
    key: str
    method: str
    args: Serialized
    attribute: bool


@message("actor-reply")
class ActorReply:
    """Outcome of an `ActorCall`: a value or an error (`lost` when the actor is gone)."""

    request_id: int
    value: Serialized | None
    error: ErrorInfo | None
    lost: bool


@message("actor-cancel")
class ActorCancel:
    """Cancel the call `request_id` made on this connection (async methods are interrupted)."""

    request_id: int


# --- observability: heartbeats, services, task output, logs (issue 8) ---------------------


@message("heartbeat")
class WorkerHeartbeat:
    """Worker -> scheduler, about once a second: the worker's load and memory.

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


@message("services")
class SchedulerServices:
    """Scheduler -> client, right after `ClientWelcome`: the scheduler's other services.

    `dashboard` is the ``host:port`` the HTTP dashboard listens on, or None.
    """

    dashboard: str | None


@message("forward-output")
class ForwardOutput:
    """Client -> scheduler: start (or stop) sending me the output of the tasks I want."""

    enabled: bool


@message("capture-output")
class CaptureOutput:
    """Scheduler -> worker: capture (or stop capturing) the output of running tasks."""

    enabled: bool


@message("out")
class OutputEntry:
    """One piece of a task's output.

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


@message("task-output")
class TaskOutput:
    """Worker -> scheduler -> client: output captured from tasks on `worker`."""

    worker: str
    entries: list[OutputEntry]


@message("logs")
class LogsRequest:
    """Ask the scheduler (client -> scheduler) or a worker (peer -> worker) for its logs.

    Answered by a `Reply` whose value is the last `n` records (all kept ones when None),
    oldest first, as ``[level name, formatted message]`` pairs.
    """

    request_id: int
    n: int | None


# --- nannies and restarts (issue 5: deployment) ----------------------------------------
# A nanny supervises one worker process and keeps its own connection to the scheduler
# (handshake role "nanny"): it reports its worker's starts and deaths, and restarts the
# worker when told to (`Client.restart`).


@message("reg-nanny")
class RegisterNanny:
    """Nanny -> scheduler, first message after the handshake."""

    nanny_id: str
    worker_name: str
    host: str
    pid: int


@message("nanny-welcome")
class NannyWelcome:
    """Answer to `RegisterNanny`."""

    scheduler_id: str


@message("worker-started")
class WorkerStarted:
    """Nanny -> scheduler: its worker process is up and registered at `address`.

    `restart_id` names the `RestartWorker` this start answers (None for a first start
    or a restart after a death).
    """

    address: str
    pid: int
    restart_id: int | None


@message("worker-died")
class WorkerDied:
    """Nanny -> scheduler: its worker process ended without being asked to.

    `exit_code` is None when a signal (`signal`, e.g. ``"SIGKILL"``) ended it;
    `reason` is one human-readable line; `stderr_tail` the last lines the process
    wrote to stderr; `restart_in` the back-off before the nanny starts it again;
    `time` the nanny's wall clock when it noticed.
    """

    address: str
    pid: int
    exit_code: int | None
    signal: str | None
    out_of_memory: bool
    reason: str
    stderr_tail: list[str]
    restart_in: float
    time: float


@message("restart-worker")
class RestartWorker:
    """Scheduler -> nanny: stop the worker process and start a fresh one."""

    restart_id: int
    reason: str


@message("restart")
class RestartRequest:
    """Client -> scheduler (`Client.restart`): forget every task, restart every worker
    that has a nanny. Answered by a `Reply` once every such worker was replaced, or at
    once without `wait_for_workers`."""

    request_id: int
    wait_for_workers: bool


# --- coordination, datasets and error replay (issue 6) -------------------------------------
#
# Requests that may wait (acquire, queue get/put, variable get, event wait) are answered
# by a `Reply` when their condition holds. A client that stops waiting (timeout or
# cancellation) sends `Withdraw`; the scheduler then answers a still-pending request with
# the value None, so every request gets exactly one reply. `task` names the task the
# request comes from (None outside tasks): when that task fails or is cancelled, its
# pending requests are answered with None too.


@message("stored")
class StoredValue:
    """A user value kept by the scheduler: pickled with every `Future` inside replaced by
    its key; `keys` lists those keys (the scheduler keeps them alive while it stores it)."""

    payload: Serialized
    keys: list[str]


@message("acquire")
class AcquireLeases:
    """`Lock`, `MultiLock`, `Semaphore`: take one lease on `count` of `names`.

    `kind` is the namespace (``"lock"``: one lease per name; ``"semaphore"``:
    `max_leases` per name). `lease` is an id chosen by the client. `task` and `worker`
    say which task holds the lease, which releases it when the task fails, is cancelled or
    its worker leaves; every lease is released when its client disconnects. Answered by a
    `Reply`: True once granted, None when withdrawn.
    """

    request_id: int
    kind: str
    names: list[str]
    count: int
    max_leases: int
    lease: str
    task: str | None
    worker: str | None


@message("release-lease")
class ReleaseLease:
    """Give back the lease `lease` of namespace `kind` (unknown leases are ignored)."""

    kind: str
    lease: str


@message("lease-count")
class LeaseCount:
    """How many leases of `name` (namespace `kind`) are held; answered by a `Reply` (int)."""

    request_id: int
    kind: str
    name: str


@message("withdraw")
class Withdraw:
    """The client stopped waiting for request `request_id` (answered with None if pending)."""

    request_id: int


@message("handoffs-done")
class HandoffsDone:
    """The client holds its own futures for the keys of these handoffs now.

    Values carrying futures reach a client with a handoff id; the scheduler keeps their
    keys alive until the client acknowledges the handoff (or leaves).
    """

    handoffs: list[int]


@message("queue-create")
class QueueCreate:
    """`Queue(name, maxsize=)`: create the queue unless it exists (0: unbounded)."""

    name: str
    maxsize: int


@message("queue-put")
class QueuePut:
    """`Queue.put`: append `items` (waits while the queue is full), or put them back at the
    front (`front`, never waits). Answered by a `Reply`: True once stored, None when
    withdrawn."""

    request_id: int
    name: str
    items: list[StoredValue]
    front: bool
    task: str | None


@message("queue-get")
class QueueGet:
    """`Queue.get`: take one item (`batch` 0), `batch` items (waits until that many are
    queued), or every queued item at once (`batch` -1, never waits).

    Answered by a `Reply` whose value is ``[[payload, keys], ...], handoff`` as a list
    (handoff None when no item holds futures), or None when withdrawn.
    """

    request_id: int
    name: str
    batch: int
    task: str | None


@message("queue-size")
class QueueSize:
    """`Queue.qsize`; answered by a `Reply` (int)."""

    request_id: int
    name: str


@message("queue-close")
class QueueClose:
    """`Queue.close`: drop the queue and its items; waiting requests fail."""

    name: str


@message("variable-set")
class VariableSet:
    """`Variable.set`; answered by a `Reply` (True) once stored."""

    request_id: int
    name: str
    value: StoredValue


@message("variable-get")
class VariableGet:
    """`Variable.get`: wait for the variable to have a value.

    Answered by a `Reply` whose value is ``[payload, keys, handoff]``, or None when
    withdrawn.
    """

    request_id: int
    name: str
    task: str | None


@message("variable-delete")
class VariableDelete:
    """`Variable.delete`: forget the value (waiting `get`s keep waiting)."""

    name: str


@message("event-set")
class EventSet:
    """`Event.set` (`flag` True) or `Event.clear` (False); answered by a `Reply` (None)."""

    request_id: int
    name: str
    flag: bool


@message("event-wait")
class EventWait:
    """`Event.wait`, `Event.is_set`: answered by a `Reply` (True) once the event is set,
    or None when withdrawn."""

    request_id: int
    name: str
    task: str | None


@message("subscribe")
class TopicSubscription:
    """`Sub`: start (or stop) receiving what is published on topic `name`."""

    name: str
    subscribed: bool


@message("publish")
class Publish:
    """`Pub.put`: send `value` to every client subscribed to topic `name`."""

    name: str
    value: StoredValue


@message("published")
class Published:
    """Scheduler -> client: `value` was published on topic `name` (see `HandoffsDone`)."""

    name: str
    value: StoredValue
    handoff: int | None


@message("publish-datasets")
class PublishDatasets:
    """`Client.publish_dataset`: store named values, all or none.

    Answered by a `Reply` whose value lists the names that exist already (then nothing
    was stored, unless `override`), else an empty list.
    """

    request_id: int
    datasets: dict[str, StoredValue]
    override: bool


@message("unpublish-dataset")
class UnpublishDataset:
    """`Client.unpublish_dataset`; answered by a `Reply` (None)."""

    request_id: int
    name: str


@message("get-dataset")
class GetDataset:
    """`Client.get_dataset`; answered by a `Reply`: ``[payload, keys, handoff]`` or None."""

    request_id: int
    name: str


@message("list-datasets")
class ListDatasets:
    """`Client.list_datasets`; answered by a `Reply` (sorted names)."""

    request_id: int


@message("set-metadata")
class SetMetadata:
    """`Client.set_metadata`: store `value` at the path `keys` of nested dicts.

    `value` is a tree of dicts with string keys whose leaves are `Serialized` payloads.
    Answered by a `Reply` (None).
    """

    request_id: int
    keys: list[str]
    value: Any


@message("get-metadata")
class GetMetadata:
    """`Client.get_metadata`; answered by a `Reply`: ``[found, tree]``."""

    request_id: int
    keys: list[str]


@message("error-cause")
class ErrorCause:
    """`Client.get_futures_error`: which task caused the failure of erred key `key`.

    Answered by a `Reply` with ``{"key", "function", "args", "dependencies"}`` of that
    task (function and args are payloads), or an error when there is none.
    """

    request_id: int
    key: str


# --- cluster administration, tasks that use the cluster (issue 6, part B) ------------------
#
# Queries about the cluster (`has_what`, `processing`, `nbytes`, versions) are answered by
# a `Reply`. Inspecting running work (`call_stack`, `stacks`, `profile`) and `Client.run`
# go from the client straight to each worker. Moving data (`replicate`, `rebalance`,
# `retire_workers`) is planned by the scheduler and carried out by workers fetching from
# each other (`AcquireReplicas`).


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


@message("nbytes")
class NbytesRequest:
    """`Client.nbytes`: the size of the keys in memory (all of them when `keys` is None).

    Answered by a `Reply` with ``{key: bytes}``, or ``{prefix: bytes}`` with `summary`.
    """

    request_id: int
    keys: list[str] | None
    summary: bool


@message("versions")
class VersionsRequest:
    """`Client.get_versions`: sent to the scheduler and to each worker; answered by a
    `Reply` with ``{"host": {...}, "packages": {name: version or None}}``."""

    request_id: int
    packages: list[str]


@message("call-stack")
class CallStackRequest:
    """Peer -> worker (`Client.call_stack`): the stacks of the running tasks `keys` (all
    running tasks when None). Answered by a `Reply` with ``{key: [frame line, ...]}``."""

    request_id: int
    keys: list[str] | None


@message("task-queue")
class TaskQueueRequest:
    """Peer -> worker (`Client.stacks`): the tasks waiting for a thread, in the order they
    will start. Answered by a `Reply` with ``[key, ...]``."""

    request_id: int


@message("profile")
class ProfileRequest:
    """Peer -> worker (`Client.profile`): the sampled stacks of the tasks whose prefix is
    `key` (all tasks when None) between the wall-clock times `start` and `stop`.

    Answered by a `Reply` whose value is a profile tree (see `trident.worker.profiling`).
    """

    request_id: int
    key: str | None
    start: float | None
    stop: float | None


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
    """What a `RunFunction` returned (`value`, pickled) or raised (`error`)."""

    request_id: int
    value: Serialized | None
    error: ErrorInfo | None


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


@message("run-results")
class RunResults:
    """Scheduler -> client: the outcome of a `RunOnNannies`, by worker address."""

    request_id: int
    results: dict[str, RunResult]


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


@message("acquire-replicas")
class AcquireReplicas:
    """Scheduler -> worker: fetch a copy of each key from the workers listed for it and
    keep it; answered by `ReplicasAcquired` with the same `operation`."""

    operation: int
    who_has: dict[str, list[str]]


@message("replicas-acquired")
class ReplicasAcquired:
    """Worker -> scheduler: the keys of `AcquireReplicas` it now holds (`nbytes`) and the
    ones no listed worker could give it (`missing`)."""

    operation: int
    nbytes: dict[str, int]
    missing: list[str]


@message("close-worker")
class CloseWorker:
    """Scheduler -> worker, or -> nanny: stop now (a nanny stops its worker and does not
    restart it). Sent to workers that were retired."""

    reason: str


@message("upload")
class UploadFile:
    """`Client.upload_file`: store a ``.py``, ``.zip`` or ``.egg`` file on every worker,
    now and joining later, and import it (unless not `load`). Answered by a `Reply` once
    every current worker stored it (`error` names the workers that failed)."""

    request_id: int
    filename: str
    data: bytes
    load: bool


@message("store-file")
class StoreFile:
    """Scheduler -> worker: store and import an uploaded file; answered by `FileStored`
    (`upload` 0: a worker that joined later, no answer expected)."""

    upload: int
    filename: str
    data: bytes
    load: bool


@message("file-stored")
class FileStored:
    """Worker -> scheduler: the outcome of `StoreFile` (`error` None when it worked)."""

    upload: int
    error: str | None


# --- cluster dumps (`Client.dump_cluster_state`) -----------------------------------------
# One request from the client, one relay to every worker, one answer from each worker.


@message("dump-cluster")
class DumpClusterState:
    """`Client.dump_cluster_state`: the scheduler's state and every worker's, for
    post-mortems. Answered by a `Reply` with ``{"scheduler": {...}, "workers": {address:
    {...}}}`` once every worker connected at the time answered (or left); `exclude`
    names task fields to leave out of every task's record."""

    request_id: int
    exclude: list[str]


@message("dump-worker")
class DumpWorkerState:
    """Scheduler -> worker: describe your state (tasks, slots, event log); answered by
    `WorkerStateDumped` with the same `dump`."""

    dump: int
    exclude: list[str]


@message("worker-dumped")
class WorkerStateDumped:
    """Worker -> scheduler: the state `DumpWorkerState` asked for, as plain data."""

    dump: int
    state: dict[str, Any]


@message("seceded")
class TaskSeceded:
    """Worker -> scheduler: the running task `key` left its thread slot (`secede`, or a
    wait on futures); the worker has room for one more task."""

    key: str


@message("rescheduled")
class TaskRescheduled:
    """Worker -> scheduler: the task `key` raised `Reschedule`; place it again."""

    key: str


# --- resilience (issue 7): heartbeats both ways, clients that reconnect -------------------
# Every peer hears from the scheduler at least once per heartbeat interval (`Heartbeat`,
# or any other message) and clients send one as often; workers send `WorkerHeartbeat`.
# A peer silent for longer than its timeout is treated as gone. A client that lost its
# connection registers again with `ResumeClient` and keeps its futures.


@message("hb")
class Heartbeat:
    """Client -> scheduler and scheduler -> every peer, once per heartbeat interval."""


@message("resume-client")
class ResumeClient:
    """A client that lost its connection registers again (instead of `RegisterClient`).

    `keys` are the keys it holds futures for and whose submission reached the scheduler
    before. The scheduler answers as it answers `RegisterClient`, then reports each
    key's outcome (`KeyDone`, `KeyErred`, `KeysLost`; unknown keys fail with
    `SchedulerLostError`), then `ClientResumed`. Messages queued by the client while it
    was disconnected follow once it read `ClientResumed`.
    """

    client_id: str
    name: str
    keys: list[str]


@message("client-resumed")
class ClientResumed:
    """Answer to `ResumeClient`. `known`: the scheduler still had the client's record
    (its wanted keys and the functions it defined); otherwise the client starts afresh
    and must define its functions again."""

    known: bool
