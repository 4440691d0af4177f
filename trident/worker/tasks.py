"""`WorkerTask`: one key on a worker, and the states it goes through (see `state`)."""

from __future__ import annotations

from ..protocol import messages as m
from ..protocol.serialize import Serialized

WAITING = "waiting"
READY = "ready"
EXECUTING = "executing"
MEMORY = "memory"
FETCH = "fetch"
FLIGHT = "flight"
#: only for `WorkerState.transition_log`: a run that raised, just before it is dropped
ERROR = "error"
#: a task dropped from the worker's records
FORGOTTEN = "forgotten"


class WorkerTask:
    """One key on this worker."""

    __slots__ = (
        "acquiring",
        "actor",
        "args",
        "cancelled",
        "dependencies",
        "dependents",
        "function",
        "inline_result",
        "is_compute",
        "key",
        "nbytes",
        "priority",
        "resources",
        "restarts",
        "run_id",
        "state",
        "timeout",
        "tried",
        "waiting_for",
        "who_has",
    )

    def __init__(self, key: str, *, is_compute: bool):
        self.key = key
        self.is_compute = is_compute
        self.state = WAITING
        self.function = ""
        self.args: Serialized | None = None
        self.priority: tuple[int, ...] = ()
        self.inline_result = False
        self.resources: dict[str, float] | None = None
        self.dependencies: list[WorkerTask] = []
        self.dependents: set[WorkerTask] = set()
        self.waiting_for: set[WorkerTask] = set()
        self.who_has: list[str] = []
        self.tried: set[str] = set()
        self.cancelled = False
        self.nbytes = 0
        self.run_id = 0
        self.timeout: float | None = None
        self.actor: m.ActorOptions | None = None
        self.restarts = 0
        #: the `AcquireReplicas` operations waiting for this key (None: none)
        self.acquiring: list[int] | None = None

    def __lt__(self, other: WorkerTask) -> bool:
        return self.priority < other.priority

    def __repr__(self) -> str:
        return f"<WorkerTask {self.key!r} {self.state}>"
