"""The events `WorkerState.handle` takes: everything that happens to a worker.

Each event carries a `stimulus_id`, a string naming what caused it (a message from the
scheduler, a task's outcome, a fetch's reply, ...), so the state's event log (see
`WorkerState.log`) ties every decision to its cause. The actor makes the ids; the state
only records them.

Events are plain slotted classes (mutable, for speed on the hot path: one per task
outcome and one per scheduler message); the state never keeps one after handling it.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..protocol import messages as m
from ..protocol.serialize import Serialized


@attrs.define(slots=True)
class FromScheduler:
    """The scheduler sent `message` (any scheduler -> worker message)."""

    message: Any
    stimulus_id: str


@attrs.define(slots=True)
class RunFinished:
    """Run `run_id` returned `value`; `payload` is its value when inlined."""

    run_id: int
    value: Any
    nbytes: int
    type_name: str
    start: float
    stop: float
    payload: Serialized | None
    stimulus_id: str


@attrs.define(slots=True)
class RunFailed:
    """Run `run_id` raised."""

    run_id: int
    error: m.ErrorInfo
    start: float
    stop: float
    stimulus_id: str


@attrs.define(slots=True)
class RunSkipped:
    """Run `run_id` did not run (it was cancelled before it started)."""

    run_id: int
    stimulus_id: str


@attrs.define(slots=True)
class RunRescheduled:
    """Run `run_id` raised `Reschedule`."""

    run_id: int
    stimulus_id: str


@attrs.define(slots=True)
class RunTimedOut:
    """Run `run_id` passed its deadline."""

    run_id: int
    error: m.ErrorInfo
    stimulus_id: str


@attrs.define(slots=True)
class ActorHosted:
    """The actor built by run `run_id` (see `HostActor`) is hosted; `location` is its
    result, `payload` the location serialized when the result is inlined."""

    run_id: int
    location: Any
    nbytes: int
    payload: Serialized | None
    stimulus_id: str


@attrs.define(slots=True)
class SecedeRequested:
    """Run `run_id` gives its slot up (`secede`)."""

    run_id: int
    stimulus_id: str


@attrs.define(slots=True)
class RejoinRequested:
    """Run `run_id` asks for a slot back (`rejoin`)."""

    run_id: int
    stimulus_id: str


@attrs.define(slots=True)
class FetchDone:
    """A fetch of `keys` from `peer` returned `data`; keys the peer lacked are absent."""

    peer: str
    keys: list[str]
    data: dict[str, Any]
    nbytes: dict[str, int]
    stimulus_id: str


@attrs.define(slots=True)
class FetchFailed:
    """The connection to `peer` failed while fetching `keys`."""

    peer: str
    keys: list[str]
    stimulus_id: str


@attrs.define(slots=True)
class DataPut:
    """A client stored `data` here directly (`scatter`)."""

    data: dict[str, Any]
    nbytes: dict[str, int]
    stimulus_id: str


@attrs.define(slots=True)
class FileStoreDone:
    """The file of `StoreFile` `upload` was stored (`error` None) or failed."""

    upload: int
    error: str | None
    stimulus_id: str


@attrs.define(slots=True)
class PluginHookDone:
    """The hook of `SetupPlugin` or `TeardownPlugin` `request` returned (`error` None) or
    raised."""

    request: int
    error: m.ErrorInfo | None
    stimulus_id: str


@attrs.define(slots=True)
class PauseChanged:
    """Memory pressure paused the worker (no new task starts) or resumed it."""

    paused: bool
    stimulus_id: str


@attrs.define(slots=True)
class SchedulerLost:
    """The connection to the scheduler is gone; the worker registers again later."""

    stimulus_id: str


Event = (
    FromScheduler
    | RunFinished
    | RunFailed
    | RunSkipped
    | RunRescheduled
    | RunTimedOut
    | ActorHosted
    | SecedeRequested
    | RejoinRequested
    | FetchDone
    | FetchFailed
    | DataPut
    | FileStoreDone
    | PluginHookDone
    | PauseChanged
    | SchedulerLost
)
