"""Messages a client or another worker (a peer) exchanges directly with a worker."""

from __future__ import annotations

from ..registry import message
from ..serialize import Serialized
from .records import ErrorInfo

# --- peer -> worker ---


@message("get")
class GetData:
    """`Client.gather` and a worker fetching a task's dependencies: ask a worker for the
    data of some keys; answered by `DataReply`."""

    request_id: int
    keys: list[str]


@message("put")
class PutData:
    """Store data on a worker (`Client.scatter`); answered by a `Reply` with nbytes."""

    request_id: int
    data: dict[str, Serialized]


@message("actor-call")
class ActorCall:
    """An actor handle (`trident.actors.calls`): call `method` of the actor `key` (or read
    the attribute, when `attribute` is set).

    `args` is ``(args, kwargs)`` pickled; answered by `ActorReply`.
    """

    request_id: int
    key: str
    method: str
    args: Serialized
    attribute: bool


@message("actor-cancel")
class ActorCancel:
    """An actor call's caller was cancelled: cancel the call `request_id` made on this
    connection (async methods are interrupted)."""

    request_id: int


@message("call-stack")
class CallStackRequest:
    """`Client.call_stack`: the stacks of the running tasks `keys` (all
    running tasks when None). Answered by a `Reply` with ``{key: [frame line, ...]}``."""

    request_id: int
    keys: list[str] | None


@message("task-queue")
class TaskQueueRequest:
    """`Client.stacks`: the tasks waiting for a thread, in the order they
    will start. Answered by a `Reply` with ``[key, ...]``."""

    request_id: int


@message("profile")
class ProfileRequest:
    """`Client.profile`: the sampled stacks of the tasks whose prefix is
    `key` (all tasks when None) between the wall-clock times `start` and `stop`.

    Answered by a `Reply` whose value is a profile tree (see `trident.worker.profiling`).
    """

    request_id: int
    key: str | None
    start: float | None
    stop: float | None


# --- worker -> peer ---


@message("data")
class DataReply:
    """Answer to `GetData`: the data it has and the keys it does not have."""

    request_id: int
    data: dict[str, Serialized]
    missing: list[str]


@message("actor-reply")
class ActorReply:
    """Outcome of an `ActorCall`: a value or an error (`lost` when the actor is gone)."""

    request_id: int
    value: Serialized | None
    error: ErrorInfo | None
    lost: bool


#: Everything a client or worker sends a worker directly (besides `Common`).
PeerToWorker = (
    GetData
    | PutData
    | ActorCall
    | ActorCancel
    | CallStackRequest
    | TaskQueueRequest
    | ProfileRequest
)

#: A worker's answers to its peers (besides `Common` messages).
WorkerToPeer = DataReply | ActorReply
