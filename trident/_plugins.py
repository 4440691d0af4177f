"""Plugins: user objects that the scheduler, each worker or each nanny runs in-process.

The base classes of dask.distributed's plugin API (`WorkerPlugin`, `SchedulerPlugin`,
`NannyPlugin`) and the built-in `UploadFile`. A plugin is registered with
`Client.register_plugin`; it is pickled on the client and unpickled where it runs:

- a `WorkerPlugin` on every worker connected now and on every worker that joins later
  (the scheduler keeps the registered plugins and sends them to a new worker right
  after its welcome, before any task); `setup(worker)` runs when it arrives,
  `teardown(worker)` when it is unregistered, replaced (same name) or the worker
  closes, and `transition(key, start, finish)` on the worker's task state changes;
- a `SchedulerPlugin` in the scheduler's process: `start(scheduler)` when it is
  registered, then `add_worker`, `remove_worker`, `add_client`, `remove_client`,
  `update_graph` and `transition` as those events happen, `close()` when it is
  replaced or the scheduler stops;
- a `NannyPlugin` in the process of every nanny (``trident up``, `LocalCluster` with
  processes), now and joining later: `setup(nanny)` and `teardown(nanny)`.

Hooks run in the event loop of the process they live in (a slow hook delays that
process); `setup`, `teardown`, `start` and `close` may be ``async def``. An exception
in `setup` (or `start`) reaches the caller of `register_plugin`; exceptions in the
event hooks are logged and otherwise ignored, so a broken plugin cannot break the
scheduler or a worker.

A neutral module: the client, the scheduler, the worker and the nanny all use it, and
it imports nothing of theirs.
"""

from __future__ import annotations

import inspect
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from ._public import publish

logger = logging.getLogger("trident")

#: Where each kind of plugin runs (`plugin_kind`).
WORKER = "worker"
SCHEDULER = "scheduler"
NANNY = "nanny"


class WorkerPlugin:
    """Code that runs inside every worker: subclass it and override the hooks you need.

    Register it with `Client.register_plugin`; it runs on the workers connected now and
    on those that join later. Set `name` to register it under that name (registering
    another plugin under the same name replaces it: the old one is torn down first);
    without one, each registration gets a fresh name. With ``idempotent = True``
    registering again under a name in use does nothing.

    Example::

        class CountFinished(WorkerPlugin):
            name = "count-finished"

            def setup(self, worker):
                self.finished = 0

            def transition(self, key, start, finish, **kwargs):
                if finish == "memory":
                    self.finished += 1
    """

    #: the name to register under (None: a fresh name per registration)
    name: str | None = None
    #: registering again under a name in use does nothing
    idempotent: bool = False

    def setup(self, worker: Any) -> Any:
        """Run when the plugin reaches a worker: at registration on the workers
        connected then, and when a worker joins later. May be ``async def``. What it
        raises is raised to the caller of `Client.register_plugin`."""

    def teardown(self, worker: Any) -> Any:
        """Run when the plugin is unregistered or replaced, and when the worker closes.
        May be ``async def``."""

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        """Run when a task on this worker changes state.

        States (dask's names): ``released`` -> ``waiting`` (for inputs) -> ``ready``
        -> ``executing`` -> ``memory`` or ``error``; inputs fetched from peers go
        ``fetch`` -> ``flight`` -> ``memory``; a task the worker lets go goes to
        ``released``, a running task the scheduler cancels to ``cancelled``. `key` is
        the key as the client spelt it (a string or a tuple).
        """


class SchedulerPlugin:
    """Code that runs inside the scheduler: subclass it and override the hooks you need.

    Register it with `Client.register_plugin` (or pass it to the scheduler in-process
    with `Scheduler.add_plugin`). Every hook but `start` and `close` is called
    synchronously from the scheduler's state machine and must not block.

    Example::

        class Counter(SchedulerPlugin):
            def __init__(self):
                self.finished = 0

            def transition(self, key, start, finish, *args, **kwargs):
                if start == "processing" and finish == "memory":
                    self.finished += 1
    """

    name: str | None = None
    idempotent: bool = False

    async def start(self, scheduler: Any) -> None:
        """Run once, when the plugin is added to the scheduler; what it raises is raised
        to the caller of `Client.register_plugin` (and the plugin is not added)."""

    async def close(self) -> None:
        """Run when the plugin is replaced (same name), unregistered, or the scheduler
        stops."""

    def update_graph(self, scheduler: Any, *, client: str, keys: set[Any], **kwargs: Any) -> None:
        """A client submitted tasks: `keys` are the keys it submitted, `client` its id."""

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        """A task changed state on the scheduler: ``released``, ``waiting``,
        ``queued``, ``no-worker``, ``processing``, ``memory``, ``erred``, and
        ``forgotten`` when the scheduler drops it. `kwargs` carries ``stimulus_id``."""

    def add_worker(self, scheduler: Any, worker: str) -> None:
        """A worker (its address) joined the cluster."""

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        """A worker (its address) left the cluster; `kwargs` carries ``reason``."""

    def add_client(self, scheduler: Any, client: str) -> None:
        """A client (its id) connected."""

    def remove_client(self, scheduler: Any, client: str) -> None:
        """A client (its id) left."""


class NannyPlugin:
    """Code that runs inside every nanny (the process that starts and restarts a worker
    process): subclass it and override `setup` / `teardown`.

    Register it with `Client.register_plugin`; it runs on the nannies connected now and
    on those that join later. Clusters without nannies (`LocalCluster` with
    ``processes=False``) run none.
    """

    name: str | None = None
    idempotent: bool = False

    def setup(self, nanny: Any) -> Any:
        """Run when the plugin reaches a nanny; may be ``async def``."""

    def teardown(self, nanny: Any) -> Any:
        """Run when the plugin is unregistered or replaced, and when the nanny stops."""


class UploadFile(WorkerPlugin):
    """A worker plugin that stores a local ``.py``, ``.zip``, ``.egg`` or ``.pyz`` file on
    every worker (now and joining later) and imports it, as `Client.upload_file` does.

    The file is read when the plugin is made. Its name is ``upload-file-<file name>``,
    so uploading a file of the same name again replaces the earlier one.

    Example::

        client.register_plugin(UploadFile("mymodule.py"))
    """

    def __init__(self, filepath: str | os.PathLike[str], load: bool = True):
        self.filename = os.path.basename(os.fspath(filepath))
        with open(filepath, "rb") as file:
            self.data = file.read()
        self.load = load
        self.name = f"upload-file-{self.filename}"

    def setup(self, worker: Any) -> None:
        worker.uploads.store(self.filename, self.data, load=self.load)


class WorkerCallback(WorkerPlugin):
    """The worker plugin of `Client.register_worker_callbacks`: calls `callback` on each
    worker, passing the `Worker` to a parameter named ``dask_worker`` or
    ``trident_worker``; the name comes from the callback."""

    def __init__(self, callback: Callable[..., Any]):
        if not callable(callback):
            raise TypeError(f"setup must be callable, got {callback!r}")
        self.callback = callback
        label = getattr(callback, "__name__", type(callback).__name__)
        self.name = f"{label}-{uuid.uuid4()}"

    def setup(self, worker: Any) -> Any:
        """Call the callback; a coroutine it returns is awaited by the worker."""
        kwargs = {}
        names = _keyword_parameters(self.callback)
        for parameter in ("dask_worker", "trident_worker"):
            if parameter in names:
                kwargs[parameter] = worker
        return self.callback(**kwargs)


def _keyword_parameters(function: Any) -> set[str]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in keyword}


def plugin_kind(plugin: Any) -> str:
    """Where `plugin` runs: `WORKER`, `SCHEDULER` or `NANNY`.

    Raises `TypeError` for an object that subclasses none of the base classes (as dask,
    which refuses duck-typed plugins in `register_plugin`).
    """
    if isinstance(plugin, SchedulerPlugin):
        return SCHEDULER
    if isinstance(plugin, NannyPlugin):
        return NANNY
    if isinstance(plugin, WorkerPlugin):
        return WORKER
    raise TypeError(
        f"cannot register {plugin!r} as a plugin: subclass trident.WorkerPlugin, "
        "trident.SchedulerPlugin or trident.NannyPlugin"
    )


def plugin_name(plugin: Any, name: str | None = None) -> str:
    """The name to register `plugin` under: `name`, else its ``name`` attribute, else
    its class name with a fresh suffix."""
    if name is not None:
        return str(name)
    own = getattr(plugin, "name", None)
    if own is not None:
        return str(own)
    return f"{type(plugin).__name__}-{uuid.uuid4()}"


def overrides(plugin: Any, hook: str, base: type) -> bool:
    """Whether `plugin` defines `hook` other than `base`'s do-nothing default (duck-typed
    plugins count when they have it at all)."""
    method = getattr(type(plugin), hook, None)
    if method is None:
        return callable(getattr(plugin, hook, None))
    return method is not getattr(base, hook, None)


async def call_hook(plugin: Any, hook: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``plugin.hook(*args, **kwargs)`` if it has it, awaiting what it returns if
    awaitable; return its result (None when it has no such hook). Raises what it
    raises. A checkpoint only when the hook returns an awaitable."""
    method = getattr(plugin, hook, None)
    if method is None:
        return None
    result = method(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def call_quietly(plugin: Any, hook: str, *args: Any, **kwargs: Any) -> None:
    """Call a synchronous event hook of `plugin`, logging (not raising) what it raises."""
    method = getattr(plugin, hook, None)
    if method is None:
        return
    try:
        method(*args, **kwargs)
    except Exception:
        logger.exception("plugin %r: %s failed", plugin, hook)


publish(globals())
