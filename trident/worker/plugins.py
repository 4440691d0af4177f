"""`WorkerPlugins`: the worker plugins (`trident._plugins.WorkerPlugin`) a worker runs.

The scheduler sends each registered plugin (`SetupPlugin`) to every worker, in order
with the worker's tasks. A hook that is a plain function runs at once, in the worker's
event loop, before the worker reads its next message, so tasks sent after a plugin see
it set up; a hook that returns an awaitable is awaited in a task of the worker's
nursery (tasks may start meanwhile, as in dask, where plugins reach running workers
outside the task stream). The outcome is fed back to the state (`PluginHookDone`),
which answers the scheduler.

Transitions: while any plugin overrides ``transition``, the state notes task state
changes (`WorkerState.watch_transitions`) and the worker hands them to the plugins
after each flush, with the keys as the client spelt them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .._keys import decode_key
from .._plugins import WorkerPlugin, call_hook, call_quietly, overrides
from ..protocol import messages as m
from ..protocol.failures import error_info
from ..protocol.serialize import loads

logger = logging.getLogger("trident.worker")

#: ``report(request, error)``: feeds the outcome of a hook to the worker's state
Report = Callable[[int, "m.ErrorInfo | None"], None]


class WorkerPlugins:
    """The plugins of one worker, by name.

    Arguments:
        worker: the `Worker` passed to the hooks.
        report: called with the request and the error (None: it worked) once a
            `setup` or `teardown` asked for by the scheduler finished.
        watch: called with whether any plugin watches transitions now.
    """

    def __init__(self, worker: Any, report: Report, watch: Callable[[bool], None]):
        self._worker = worker
        self._report = report
        self._watch = watch
        self.plugins: dict[str, Any] = {}
        self._watching: list[Any] = []

    def _rewatch(self) -> None:
        self._watching = [
            p for p in self.plugins.values() if overrides(p, "transition", WorkerPlugin)
        ]
        self._watch(bool(self._watching))

    def _error(self, exc: BaseException) -> m.ErrorInfo:
        return error_info(exc, self._worker.address)

    def setup(self, nursery: trio.Nursery, request: int, name: str, payload: Any) -> None:
        """Unpickle a plugin, tear down the one it replaces, then set it up (see the
        module docstring for when this returns)."""
        try:
            plugin = loads(payload)
        except Exception as exc:
            logger.warning("worker %s: cannot load plugin %s: %r", self._worker.address, name, exc)
            self._report(request, self._error(exc))
            return
        old = self.plugins.pop(name, None)
        self.plugins[name] = plugin
        self._rewatch()
        steps = [(old, "teardown")] if old is not None else []
        steps.append((plugin, "setup"))
        logger.info("worker %s: setting up plugin %s", self._worker.address, name)
        self._run(nursery, request, name, steps)

    def teardown(self, nursery: trio.Nursery, request: int, name: str) -> None:
        """Tear down and drop the plugin `name` (nothing to do when it is unknown)."""
        plugin = self.plugins.pop(name, None)
        self._rewatch()
        self._run(nursery, request, name, [(plugin, "teardown")] if plugin is not None else [])

    def _run(
        self, nursery: trio.Nursery, request: int, name: str, steps: list[tuple[Any, str]]
    ) -> None:
        """Run the hooks in `steps` in order: inline until one returns an awaitable, the
        rest in a task. A failing teardown of a replaced plugin is only logged."""
        for index, (plugin, hook) in enumerate(steps):
            try:
                result = _call(plugin, hook, self._worker)
            except Exception as exc:
                if self._failed(request, name, hook, exc, last=index == len(steps) - 1):
                    return
                continue
            if inspect.isawaitable(result):
                rest = steps[index + 1 :]
                nursery.start_soon(self._run_async, request, name, hook, result, rest)
                return
        self._report(request, None)

    def _failed(
        self, request: int, name: str, hook: str, exc: BaseException, *, last: bool
    ) -> bool:
        """Log a hook's failure; report it (True) when it is what the request asked for."""
        logger.warning("worker %s: plugin %s %s failed: %r", self._worker.address, name, hook, exc)
        if last:
            self._report(request, self._error(exc))
        return last

    async def _run_async(
        self,
        request: int,
        name: str,
        hook: str,
        pending: Awaitable[Any],
        rest: list[tuple[Any, str]],
    ) -> None:
        try:
            await pending
        except Exception as exc:
            if self._failed(request, name, hook, exc, last=not rest):
                return
        for index, (plugin, next_hook) in enumerate(rest):
            try:
                await call_hook(plugin, next_hook, worker=self._worker)
            except Exception as exc:
                if self._failed(request, name, next_hook, exc, last=index == len(rest) - 1):
                    return
        self._report(request, None)

    def transitions(self, entries: list[tuple[str, str, str]]) -> None:
        """Hand noted state changes to the plugins that watch them."""
        for key, start, finish in entries:
            decoded = decode_key(key)
            for plugin in self._watching:
                call_quietly(plugin, "transition", decoded, start, finish)

    async def teardown_all(self) -> None:
        """Tear every plugin down (the worker closes), newest first; failures are logged."""
        while self.plugins:
            name, plugin = self.plugins.popitem()
            try:
                await call_hook(plugin, "teardown", worker=self._worker)
            except Exception:
                logger.exception("worker %s: plugin %s teardown failed", self._worker.address, name)
        self._watching = []


def _call(plugin: Any, hook: str, worker: Any) -> Any:
    method = getattr(plugin, hook, None)
    return None if method is None else method(worker=worker)
