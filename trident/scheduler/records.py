"""What the scheduler remembers about each task, worker and client.

Plain slotted classes with no behaviour beyond small helpers; `SchedulerState` owns and
mutates them. Sets that most tasks never need are created lazily to keep the per-task
footprint small.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .._keys import key_prefix
from ..protocol.messages import ActorOptions, ErrorInfo, WorkerHeartbeat, WorkerInfo
from ..protocol.serialize import Serialized

# Task states. A task that is forgotten is simply no longer in `SchedulerState.tasks`.
RELEASED = "released"  # known (for lineage), no data, not scheduled
WAITING = "waiting"  # waits for dependencies to reach memory
QUEUED = "queued"  # ready root task, held back until a worker has room
NO_WORKER = "no-worker"  # ready, but no worker can run it now
PROCESSING = "processing"  # sent to a worker
MEMORY = "memory"  # result held by at least one worker
ERRED = "erred"  # failed, or depends on a failure

TASK_STATES = (RELEASED, WAITING, QUEUED, NO_WORKER, PROCESSING, MEMORY, ERRED)


class _EmptySet(frozenset):
    """The empty set every record field starts with, shared instead of allocated.

    Most tasks never have dependents, waiters or holders at a given moment; an empty
    `set` costs 216 bytes each. Removing from this one does nothing; code that adds to a
    field replaces it with a real set first (the ``add_*`` methods of `TaskRecord`).
    """

    __slots__ = ()

    def discard(self, item: object) -> None:
        pass

    def clear(self) -> None:
        pass


#: The shared empty set (typed loosely: it stands in for the fields' `set` types).
EMPTY: Any = _EmptySet()


class TaskExtras:
    """Fields of a task that most tasks leave at their defaults, kept out of line.

    Ten fields at 8 bytes each on every record add up at a million tasks; they live
    here instead, created on the first field set to something else than its default.
    """

    __slots__ = (
        "actor",
        "allow_other_workers",
        "error",
        "resources",
        "restarts",
        "restrictions",
        "retries",
        "suspicious",
        "timeout",
        "workers_died",
    )

    def __init__(self) -> None:
        self.actor: ActorOptions | None = None
        self.allow_other_workers = False
        self.error: ErrorInfo | None = None
        self.resources: dict[str, float] | None = None
        #: how many times this actor was rebuilt after losing its worker
        self.restarts = 0
        self.restrictions: frozenset[str] | None = None
        self.retries = 0
        #: how many workers died while running this task
        self.suspicious = 0
        self.timeout: float | None = None
        self.workers_died: list[str] | None = None


_EXTRAS_DEFAULTS = TaskExtras()

T = TypeVar("T")


class _Extra(Generic[T]):
    """A `TaskRecord` field stored in its `TaskExtras` (the default when there is none)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.default: T = getattr(_EXTRAS_DEFAULTS, name)

    def __get__(self, record: TaskRecord, owner: type | None = None) -> T:
        extras = record._extras
        return self.default if extras is None else getattr(extras, self.name)

    def __set__(self, record: TaskRecord, value: T) -> None:
        extras = record._extras
        if extras is None:
            if value is self.default or value == self.default:
                return
            extras = record._extras = TaskExtras()
        setattr(extras, self.name, value)


class TaskRecord:
    """One key in the scheduler's graph."""

    __slots__ = (
        "_extras",
        "args",
        "dependencies",
        "dependents",
        "function",
        "key",
        "nbytes",
        "prefix",
        "priority",
        "processing_on",
        "state",
        "type_name",
        "waiters",
        "waiting_count",
        "who_has",
        "who_wants",
    )

    actor = _Extra[ActorOptions | None]()
    allow_other_workers = _Extra[bool]()
    error = _Extra[ErrorInfo | None]()
    resources = _Extra["dict[str, float] | None"]()
    restarts = _Extra[int]()
    restrictions = _Extra["frozenset[str] | None"]()
    retries = _Extra[int]()
    suspicious = _Extra[int]()
    timeout = _Extra[float | None]()
    workers_died = _Extra["list[str] | None"]()

    def __init__(
        self,
        key: str,
        function: str | None,
        args: Serialized | None,
        priority: int,
    ):
        self.key = key
        self.prefix = key_prefix(key)
        self.function = function
        self.args = args
        #: smaller runs first: user priority first, then submission order
        self.priority = priority
        self.state = RELEASED
        self.dependencies: list[TaskRecord] | tuple[()] = ()
        #: every record that names this one as a dependency (kept for lineage)
        self.dependents: set[TaskRecord] = EMPTY
        #: dependents that still need this task's data
        self.waiters: set[TaskRecord] = EMPTY
        #: dependencies not in memory yet (a count: each finishing input takes one off)
        self.waiting_count = 0
        self.who_has: set[WorkerRecord] = EMPTY
        self.who_wants: set[ClientRecord] = EMPTY
        self.processing_on: WorkerRecord | None = None
        self.nbytes = 0
        self.type_name = ""
        self._extras: TaskExtras | None = None

    def add_dependent(self, ts: TaskRecord) -> None:
        if self.dependents is EMPTY:
            self.dependents = set()
        self.dependents.add(ts)

    def add_waiter(self, ts: TaskRecord) -> None:
        if self.waiters is EMPTY:
            self.waiters = set()
        self.waiters.add(ts)

    def add_holder(self, ws: WorkerRecord) -> None:
        if self.who_has is EMPTY:
            self.who_has = set()
        self.who_has.add(ws)

    def add_wanter(self, cs: ClientRecord) -> None:
        if self.who_wants is EMPTY:
            self.who_wants = set()
        self.who_wants.add(cs)

    @property
    def is_root(self) -> bool:
        """A task the scheduler may hold back in its queue: no inputs, no restrictions."""
        if self.dependencies:
            return False
        extras = self._extras
        return extras is None or (extras.restrictions is None and extras.resources is None)

    def __lt__(self, other: TaskRecord) -> bool:
        return self.priority < other.priority

    def __repr__(self) -> str:
        return f"<TaskRecord {self.key!r} {self.state}>"


def address_host(address: str) -> str:
    """The host of a worker address: ``tcp://10.0.0.5:8786`` -> ``10.0.0.5`` (IPv6
    without brackets). In-process workers live on this machine: ``127.0.0.1``."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        return ""
    if scheme == "inproc":
        return "127.0.0.1"
    if rest.startswith("["):
        return rest[1 : rest.find("]")]
    host, colon, _ = rest.rpartition(":")
    return host if colon else rest


class WorkerRecord:
    """One connected worker, as the scheduler sees it."""

    __slots__ = (
        "address",
        "functions",
        "has_what",
        "heartbeat",
        "host",
        "info",
        "last_seen",
        "long_running",
        "name",
        "nbytes",
        "nthreads",
        "occupancy",
        "processing",
        "resources_free",
        "running",
        "unstarted_root_bytes",
        "unstarted_roots",
    )

    def __init__(self, info: WorkerInfo, now: float = 0.0):
        self.info = info
        self.address = info.address
        self.name = info.name
        #: the host part of the address, which restrictions may name (``workers="10.0.0.5"``)
        self.host = address_host(info.address)
        self.nthreads = max(1, info.nthreads)
        #: task -> estimated seconds; insertion-ordered
        self.processing: dict[TaskRecord, float] = {}
        #: the processing tasks presumed running (one per thread, the oldest assigned
        #: first) -> when the scheduler presumes they started: when sent to a free
        #: thread, or when the task before them on that thread ended
        self.running: dict[TaskRecord, float] = {}
        #: processing tasks that left their thread slot (`secede`): they run on, but the
        #: worker has room for other tasks
        self.long_running: dict[TaskRecord, None] = {}
        #: processing root tasks not presumed running -> their expected output bytes
        #: when they were assigned (only those expected to make some), and the sum
        #: (`placement.PIPELINE_BYTES`)
        self.unstarted_roots: dict[TaskRecord, int] = {}
        self.unstarted_root_bytes = 0
        self.has_what: dict[TaskRecord, None] = {}
        self.occupancy = 0.0
        self.nbytes = 0
        self.functions: set[str] = set()
        self.resources_free: dict[str, float] = dict(info.resources)
        #: the latest heartbeat (None until the first arrives) and when anything was heard
        self.heartbeat: WorkerHeartbeat | None = None
        self.last_seen = now

    def __repr__(self) -> str:
        return f"<WorkerRecord {self.address} processing={len(self.processing)}>"


class ClientRecord:
    """One connected client (or the fire-and-forget pseudo-client)."""

    __slots__ = ("client_id", "forward_output", "functions", "name", "wants")

    def __init__(self, client_id: str, name: str):
        self.client_id = client_id
        self.name = name
        self.wants: set[TaskRecord] = set()
        #: function tokens this client defined; the client never sends them again
        self.functions: set[str] = set()
        #: the client wants the output of the tasks it wants (`Client.forward_logging`)
        self.forward_output = False

    def __repr__(self) -> str:
        return f"<ClientRecord {self.client_id}>"
