"""The instructions `WorkerState.flush` returns: what the `Worker` actor must do.

The state decides, the actor carries out: run a task, fetch from a peer, interrupt a
run, host or stop an actor, load a function, store a file, capture output, close.
Outcomes come back to the state as events (`trident.worker.events`).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..protocol import messages as m
from ..protocol.serialize import Serialized


@attrs.frozen
class Execute:
    """Start run `run_id` of task `key` (its function, arguments and inputs are in the state)."""

    key: str
    run_id: int


@attrs.frozen
class Fetch:
    """Get the data of `keys` from the worker at `peer`."""

    peer: str
    keys: list[str]


@attrs.frozen
class Interrupt:
    """Abandon run `run_id`: async tasks are cancelled, a sync result is discarded."""

    key: str
    run_id: int


@attrs.frozen
class ForgetActor:
    """The actor hosted under `key` is released: stop it."""

    key: str


@attrs.frozen
class Rejoin:
    """The seceded run `run_id` holds a slot again: let it go on."""

    run_id: int


@attrs.frozen(eq=False)
class HostActor:
    """Run `run_id` built `instance`, the actor of task `key`: host it and report its
    location with `ActorHosted` (serialized too when `inline`)."""

    key: str
    run_id: int
    instance: Any
    options: m.ActorOptions
    restarts: int
    inline: bool


@attrs.frozen
class LoadFunction:
    """Unpickle the function the scheduler defined under `token`."""

    token: str
    function: Serialized


@attrs.frozen
class ForgetFunctions:
    """Drop the unpickled functions under `tokens`: no task of the worker uses them."""

    tokens: list[str]


@attrs.frozen
class StoreFile:
    """Store (and import, when `load`) an uploaded file; report it with `FileStoreDone`."""

    upload: int
    filename: str
    data: bytes
    load: bool


@attrs.frozen
class SetupPlugin:
    """Unpickle a worker plugin and set it up (tearing down the one of the same name);
    report it with `PluginHookDone`."""

    request: int
    name: str
    plugin: Serialized


@attrs.frozen
class TeardownPlugin:
    """Tear the worker plugin `name` down and drop it; report it with `PluginHookDone`."""

    request: int
    name: str


@attrs.frozen
class CaptureOutput:
    """Capture the output of running tasks (or stop capturing it)."""

    enabled: bool


@attrs.frozen
class Close:
    """The scheduler told this worker to stop (no reconnecting)."""

    reason: str


Instruction = (
    Execute
    | Fetch
    | Interrupt
    | ForgetActor
    | Rejoin
    | HostActor
    | LoadFunction
    | ForgetFunctions
    | StoreFile
    | SetupPlugin
    | TeardownPlugin
    | CaptureOutput
    | Close
)
