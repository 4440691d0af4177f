"""Coordination primitives and datasets: client -> scheduler requests, and `Published`.

Requests that may wait (acquire, queue get/put, variable get, event wait) are answered
by a `Reply` when their condition holds. A client that stops waiting (timeout or
cancellation) sends `Withdraw`; the scheduler then answers a still-pending request with
the value None, so every request gets exactly one reply. `task` names the task the
request comes from (None outside tasks): when that task fails or is cancelled, its
pending requests are answered with None too.
"""

from __future__ import annotations

from typing import Any

from ..registry import message
from .records import StoredValue

# --- locks and semaphores ---


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
    """`Lock.release`, `Semaphore.release`: give back the lease `lease` of namespace `kind`
    (unknown leases are ignored)."""

    kind: str
    lease: str


@message("lease-count")
class LeaseCount:
    """`Lock.locked`, `Semaphore.get_value`: how many leases of `name` (namespace `kind`)
    are held; answered by a `Reply` (int)."""

    request_id: int
    kind: str
    name: str


@message("withdraw")
class Withdraw:
    """A coordination wait timed out or was cancelled (`trident.coordination.waiting`): the
    client stopped waiting for request `request_id` (answered with None if pending)."""

    request_id: int


@message("handoffs-done")
class HandoffsDone:
    """The client holds its own futures for the keys of these handoffs now (sent when it
    unpickled a stored value, `trident.client.stored`).

    Values carrying futures reach a client with a handoff id; the scheduler keeps their
    keys alive until the client acknowledges the handoff (or leaves).
    """

    handoffs: list[int]


# --- queues, variables, events ---


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


# --- topics ---


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
    """Scheduler -> each subscribed client (`Pub.put` elsewhere): `value` was published on
    topic `name` (see `HandoffsDone`)."""

    name: str
    value: StoredValue
    handoff: int | None


# --- datasets and metadata ---


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
    """`Client.unpublish_dataset`: remove the datasets `names` (those that exist);
    answered by a `Reply` (None)."""

    request_id: int
    names: list[str]


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


#: Client -> scheduler: requests of `trident.coordination` and the dataset API.
CoordinationRequest = (
    AcquireLeases
    | ReleaseLease
    | LeaseCount
    | Withdraw
    | HandoffsDone
    | QueueCreate
    | QueuePut
    | QueueGet
    | QueueSize
    | QueueClose
    | VariableSet
    | VariableGet
    | VariableDelete
    | EventSet
    | EventWait
    | TopicSubscription
    | Publish
    | PublishDatasets
    | UnpublishDataset
    | GetDataset
    | ListDatasets
    | SetMetadata
    | GetMetadata
)
