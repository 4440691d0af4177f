"""Every message that crosses a trident connection, grouped by who sends it to whom.

Each class is a frozen, slotted attrs class registered under a short tag (see
`registry.message`); its docstring says which API sends it. Fields are validated on
decode. Keys are strings; user data is always a `Serialized` payload that only clients
and workers unpickle (and the scheduler's actor for `RunOnScheduler`, from an
authenticated client).

The modules, and the union type of each direction:

- `handshake`: `Handshake`, the first messages on every connection.
- `client_scheduler`: `ClientToScheduler`, `SchedulerToClient`; `coordination` holds the
  coordination and dataset requests (`CoordinationRequest`, part of `ClientToScheduler`)
  and `Published`.
- `scheduler_worker`: `SchedulerToWorker`, `WorkerToScheduler`.
- `peer`: `PeerToWorker`, `WorkerToPeer` (a client or worker talking to a worker).
- `nanny`: `NannyToScheduler`, `SchedulerToNanny`.
- `common`: `Common`, the few messages that travel more than one way (heartbeats,
  replies, logs and versions requests, `Client.run` calls and their results, closing,
  task output).
- `diagnostics`: events, the task stream and retries (`DiagnosticsRequest`, part of
  `ClientToScheduler`) and `EventLogged`.
- `records`: `Record`, the pieces nested in other messages and never sent alone.

Every registered class is in exactly one of these unions (tests/protocol/test_messages.py).
Everything is re-exported here: ``from trident.protocol import messages as m; m.KeyDone``.
"""

from __future__ import annotations

from .client_scheduler import (
    WORKER_CLIENT_PREFIX as WORKER_CLIENT_PREFIX,
)
from .client_scheduler import (
    CancelKeys as CancelKeys,
)
from .client_scheduler import (
    ClientResumed as ClientResumed,
)
from .client_scheduler import (
    ClientToScheduler as ClientToScheduler,
)
from .client_scheduler import (
    ClientWelcome as ClientWelcome,
)
from .client_scheduler import (
    DumpClusterState as DumpClusterState,
)
from .client_scheduler import (
    ErrorCause as ErrorCause,
)
from .client_scheduler import (
    FireAndForget as FireAndForget,
)
from .client_scheduler import (
    ForwardOutput as ForwardOutput,
)
from .client_scheduler import (
    Goodbye as Goodbye,
)
from .client_scheduler import (
    GraphProgress as GraphProgress,
)
from .client_scheduler import (
    HasWhatRequest as HasWhatRequest,
)
from .client_scheduler import (
    InfoRequest as InfoRequest,
)
from .client_scheduler import (
    KeyDone as KeyDone,
)
from .client_scheduler import (
    KeyErred as KeyErred,
)
from .client_scheduler import (
    KeysCancelled as KeysCancelled,
)
from .client_scheduler import (
    KeysLost as KeysLost,
)
from .client_scheduler import (
    KeysWithoutWorker as KeysWithoutWorker,
)
from .client_scheduler import (
    NbytesRequest as NbytesRequest,
)
from .client_scheduler import PluginResults as PluginResults
from .client_scheduler import (
    ProcessingRequest as ProcessingRequest,
)
from .client_scheduler import (
    RebalanceRequest as RebalanceRequest,
)
from .client_scheduler import (
    RegisterClient as RegisterClient,
)
from .client_scheduler import RegisterPlugin as RegisterPlugin
from .client_scheduler import (
    RegisterScattered as RegisterScattered,
)
from .client_scheduler import (
    ReleaseKeys as ReleaseKeys,
)
from .client_scheduler import (
    ReplicateRequest as ReplicateRequest,
)
from .client_scheduler import (
    RestartRequest as RestartRequest,
)
from .client_scheduler import (
    RestartWorkersRequest as RestartWorkersRequest,
)
from .client_scheduler import (
    ResumeClient as ResumeClient,
)
from .client_scheduler import (
    RetireWorkersRequest as RetireWorkersRequest,
)
from .client_scheduler import (
    RunOnNannies as RunOnNannies,
)
from .client_scheduler import (
    RunOnScheduler as RunOnScheduler,
)
from .client_scheduler import (
    RunResults as RunResults,
)
from .client_scheduler import (
    SchedulerServices as SchedulerServices,
)
from .client_scheduler import (
    SchedulerToClient as SchedulerToClient,
)
from .client_scheduler import StoryRequest as StoryRequest
from .client_scheduler import UnregisterPlugin as UnregisterPlugin
from .client_scheduler import (
    UpdateGraph as UpdateGraph,
)
from .client_scheduler import (
    UploadFile as UploadFile,
)
from .client_scheduler import (
    WantKeys as WantKeys,
)
from .client_scheduler import (
    WhoHasRequest as WhoHasRequest,
)
from .client_scheduler import (
    WorkersChanged as WorkersChanged,
)
from .common import (
    CloseWorker as CloseWorker,
)
from .common import (
    Common as Common,
)
from .common import (
    Heartbeat as Heartbeat,
)
from .common import (
    LogsRequest as LogsRequest,
)
from .common import PluginDone as PluginDone
from .common import (
    Reply as Reply,
)
from .common import (
    RunFunction as RunFunction,
)
from .common import (
    RunResult as RunResult,
)
from .common import SetupPlugin as SetupPlugin
from .common import (
    TaskOutput as TaskOutput,
)
from .common import TeardownPlugin as TeardownPlugin
from .common import (
    VersionsRequest as VersionsRequest,
)
from .coordination import (
    AcquireLeases as AcquireLeases,
)
from .coordination import (
    CoordinationRequest as CoordinationRequest,
)
from .coordination import (
    EventSet as EventSet,
)
from .coordination import (
    EventWait as EventWait,
)
from .coordination import (
    GetDataset as GetDataset,
)
from .coordination import (
    GetMetadata as GetMetadata,
)
from .coordination import (
    HandoffsDone as HandoffsDone,
)
from .coordination import (
    LeaseCount as LeaseCount,
)
from .coordination import (
    ListDatasets as ListDatasets,
)
from .coordination import (
    Publish as Publish,
)
from .coordination import (
    PublishDatasets as PublishDatasets,
)
from .coordination import (
    Published as Published,
)
from .coordination import (
    QueueClose as QueueClose,
)
from .coordination import (
    QueueCreate as QueueCreate,
)
from .coordination import (
    QueueGet as QueueGet,
)
from .coordination import (
    QueuePut as QueuePut,
)
from .coordination import (
    QueueSize as QueueSize,
)
from .coordination import (
    ReleaseLease as ReleaseLease,
)
from .coordination import (
    SetMetadata as SetMetadata,
)
from .coordination import (
    TopicSubscription as TopicSubscription,
)
from .coordination import (
    UnpublishDataset as UnpublishDataset,
)
from .coordination import (
    VariableDelete as VariableDelete,
)
from .coordination import (
    VariableGet as VariableGet,
)
from .coordination import (
    VariableSet as VariableSet,
)
from .coordination import (
    Withdraw as Withdraw,
)
from .diagnostics import (
    DiagnosticsRequest as DiagnosticsRequest,
)
from .diagnostics import (
    EventLogged as EventLogged,
)
from .diagnostics import (
    EventsRequest as EventsRequest,
)
from .diagnostics import (
    LogEvent as LogEvent,
)
from .diagnostics import (
    RetryKeys as RetryKeys,
)
from .diagnostics import (
    SubscribeEvents as SubscribeEvents,
)
from .diagnostics import (
    TaskStreamRequest as TaskStreamRequest,
)
from .handshake import (
    PROTOCOL_VERSION as PROTOCOL_VERSION,
)
from .handshake import (
    Challenge as Challenge,
)
from .handshake import (
    Handshake as Handshake,
)
from .handshake import (
    Hello as Hello,
)
from .handshake import (
    Refused as Refused,
)
from .handshake import (
    Welcome as Welcome,
)
from .nanny import (
    NannyToScheduler as NannyToScheduler,
)
from .nanny import (
    NannyWelcome as NannyWelcome,
)
from .nanny import (
    RegisterNanny as RegisterNanny,
)
from .nanny import (
    RestartWorker as RestartWorker,
)
from .nanny import (
    SchedulerToNanny as SchedulerToNanny,
)
from .nanny import (
    WorkerDied as WorkerDied,
)
from .nanny import (
    WorkerStarted as WorkerStarted,
)
from .peer import (
    ActorCall as ActorCall,
)
from .peer import (
    ActorCancel as ActorCancel,
)
from .peer import (
    ActorReply as ActorReply,
)
from .peer import (
    CallStackRequest as CallStackRequest,
)
from .peer import (
    DataReply as DataReply,
)
from .peer import (
    GetData as GetData,
)
from .peer import (
    PeerToWorker as PeerToWorker,
)
from .peer import (
    ProfileRequest as ProfileRequest,
)
from .peer import (
    PutData as PutData,
)
from .peer import (
    TaskQueueRequest as TaskQueueRequest,
)
from .peer import (
    WorkerToPeer as WorkerToPeer,
)
from .records import (
    ActorOptions as ActorOptions,
)
from .records import (
    ErrorInfo as ErrorInfo,
)
from .records import (
    OutputEntry as OutputEntry,
)
from .records import (
    Record as Record,
)
from .records import (
    StoredValue as StoredValue,
)
from .records import (
    TaskSpec as TaskSpec,
)
from .records import (
    WorkerInfo as WorkerInfo,
)
from .scheduler_worker import (
    AcquireReplicas as AcquireReplicas,
)
from .scheduler_worker import (
    CancelTask as CancelTask,
)
from .scheduler_worker import (
    CaptureOutput as CaptureOutput,
)
from .scheduler_worker import (
    DefineFunction as DefineFunction,
)
from .scheduler_worker import (
    DumpWorkerState as DumpWorkerState,
)
from .scheduler_worker import (
    FileStored as FileStored,
)
from .scheduler_worker import (
    ForgetFunctions as ForgetFunctions,
)
from .scheduler_worker import (
    FreeKeys as FreeKeys,
)
from .scheduler_worker import (
    KeysReleased as KeysReleased,
)
from .scheduler_worker import (
    MissingData as MissingData,
)
from .scheduler_worker import (
    RecallTasks as RecallTasks,
)
from .scheduler_worker import (
    RegisterWorker as RegisterWorker,
)
from .scheduler_worker import (
    ReplicasAcquired as ReplicasAcquired,
)
from .scheduler_worker import (
    RunTask as RunTask,
)
from .scheduler_worker import (
    SchedulerToWorker as SchedulerToWorker,
)
from .scheduler_worker import (
    StoreFile as StoreFile,
)
from .scheduler_worker import (
    TaskFailed as TaskFailed,
)
from .scheduler_worker import (
    TaskFinished as TaskFinished,
)
from .scheduler_worker import (
    TaskRescheduled as TaskRescheduled,
)
from .scheduler_worker import (
    TaskSeceded as TaskSeceded,
)
from .scheduler_worker import (
    TasksRecalled as TasksRecalled,
)
from .scheduler_worker import (
    WorkerHeartbeat as WorkerHeartbeat,
)
from .scheduler_worker import (
    WorkerRetiring as WorkerRetiring,
)
from .scheduler_worker import (
    WorkerStateDumped as WorkerStateDumped,
)
from .scheduler_worker import (
    WorkerToScheduler as WorkerToScheduler,
)
from .scheduler_worker import (
    WorkerWelcome as WorkerWelcome,
)
