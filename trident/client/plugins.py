"""`PluginMethods`: the `Client` methods that register plugins, and `Client.story`.

Plugins (`trident._plugins`) are pickled here and sent to the scheduler, which runs a
scheduler plugin itself and sends worker and nanny plugins to every worker or nanny,
now and joining later (see `trident.scheduler.plugins`). Every method blocks in a
blocking client and returns a coroutine in an asynchronous one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._keys import decode_key, encode_key
from .._plugins import (
    NANNY,
    SCHEDULER,
    WORKER,
    NannyPlugin,
    WorkerCallback,
    plugin_kind,
    plugin_name,
)
from ..protocol import messages as m
from ..protocol.serialize import dumps
from .admin import load_error
from .base import ClientBase
from .future import Future


class PluginMethods(ClientBase):
    """Mixed into `Client`: plugins and the scheduler's story of keys (see the module)."""

    def register_plugin(
        self, plugin: Any, name: str | None = None, idempotent: bool | None = None
    ) -> Any:
        """Register a `WorkerPlugin`, `SchedulerPlugin` or `NannyPlugin` (as dask's).

        A worker (nanny) plugin is set up on every worker (nanny) connected now and on
        every one that joins later, and torn down when it is unregistered, replaced or
        its worker closes; a scheduler plugin is started in the scheduler's process.

        `name` defaults to the plugin's ``name`` attribute, else a fresh name. A plugin
        registered under a name in use replaces the old one (torn down first), unless
        `idempotent` (default: the plugin's ``idempotent`` attribute), in which case
        nothing happens. Returns ``{worker address: {"status": "OK"}}`` for worker and
        nanny plugins (``{}`` when an idempotent registration did nothing; nannies are
        listed by their worker's address) and None for scheduler plugins. What the
        plugin's ``setup`` (or ``start``) raised is raised here, with a note naming
        where; the plugin stays registered (as in dask). Raises `TypeError` for an
        object that subclasses none of the plugin classes.
        """
        kind = plugin_kind(plugin)
        return self._register(plugin, kind, name, idempotent)

    def register_worker_plugin(
        self, plugin: Any, name: str | None = None, nanny: bool | None = None
    ) -> Any:
        """dask's older form of `register_plugin` for worker and nanny plugins: any
        object with ``setup`` / ``teardown`` / ``transition`` methods is accepted; it runs
        in the nannies when `nanny` is true (default: when it is a `NannyPlugin`)."""
        if nanny is None:
            nanny = isinstance(plugin, NannyPlugin)
        return self._register(plugin, NANNY if nanny else WORKER, name, None)

    def register_scheduler_plugin(
        self, plugin: Any, name: str | None = None, idempotent: bool | None = None
    ) -> Any:
        """dask's older form of `register_plugin` for scheduler plugins."""
        return self._register(plugin, SCHEDULER, name, idempotent)

    def unregister_worker_plugin(self, name: str, nanny: bool | None = None) -> Any:
        """Tear the worker plugin `name` (the nanny plugin with ``nanny=True``) down on
        every worker and stop sending it to new ones. Returns ``{address: {"status":
        "OK"}}``; raises what a ``teardown`` raised, and `ValueError` when no plugin has
        that name."""
        kind = NANNY if nanny else WORKER
        return self._sync(self._unregister_plugin, kind, str(name))

    def unregister_scheduler_plugin(self, name: str) -> Any:
        """Remove the scheduler plugin `name` (its ``close`` is awaited). Raises
        `ValueError` when no plugin has that name."""
        return self._sync(self._unregister_plugin, SCHEDULER, str(name))

    def register_worker_callbacks(self, setup: Callable[..., Any] | None = None) -> Any:
        """Run `setup` on every worker, now and joining later (dask's older API): a
        worker plugin whose ``setup`` calls it, passing the `Worker` to a parameter named
        ``dask_worker`` or ``trident_worker``. Returns as `register_plugin` does."""
        if setup is None:
            raise TypeError("register_worker_callbacks needs a setup function")
        return self._register(WorkerCallback(setup), WORKER, None, None)

    def _register(self, plugin: Any, kind: str, name: str | None, idempotent: bool | None) -> Any:
        self._check_open()
        name = plugin_name(plugin, name)
        if idempotent is None:
            idempotent = bool(getattr(plugin, "idempotent", False))
        payload = dumps(plugin)
        return self._sync(self._register_plugin, kind, name, payload, bool(idempotent))

    async def _register_plugin(
        self, kind: str, name: str, payload: Any, idempotent: bool
    ) -> dict[str, Any] | None:
        answer = await self._core.request(
            lambda rid: m.RegisterPlugin(rid, kind, name, payload, idempotent)
        )
        return _outcome(answer, kind, name)

    async def _unregister_plugin(self, kind: str, name: str) -> dict[str, Any] | None:
        answer = await self._core.request(lambda rid: m.UnregisterPlugin(rid, kind, name))
        return _outcome(answer, kind, name)

    def story(self, *keys_or_futures: Any) -> Any:
        """The scheduler's recent transitions of these keys (or futures' keys), oldest
        first: a list of ``(key, start state, finish state, stimulus id, time)``.

        The scheduler keeps its last 100,000 transitions of all tasks; older ones are
        gone. Unlike dask's, the story holds the scheduler's transitions only (not the
        workers'), and no recommendations.
        """
        keys = [k._key if isinstance(k, Future) else encode_key(k) for k in keys_or_futures]
        return self._sync(self._story, keys)

    async def _story(self, keys: list[str]) -> list[tuple[Any, ...]]:
        entries = await self._core.request(lambda rid: m.StoryRequest(rid, keys))
        return [(decode_key(key), *rest) for key, *rest in entries]


def _outcome(answer: m.PluginResults, kind: str, name: str) -> dict[str, Any] | None:
    """What `register_plugin` returns for `answer`, or raise the first error in it."""
    if answer.error is not None:
        raise load_error(answer.error, f"the scheduler ({kind} plugin {name!r})")
    for address, error in answer.results.items():
        if error is not None:
            raise load_error(error, f"{address} ({kind} plugin {name!r})")
    if kind == SCHEDULER:
        return None
    return {address: {"status": "OK"} for address in answer.results}
