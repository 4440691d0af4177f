"""Actors and task functions written for asyncio: which ones, and the asyncio loop
their coroutines run in.

dask runs an actor's ``async def`` methods in the worker's asyncio loop, so dask actors
use ``asyncio.Event``, ``asyncio.sleep`` and ``asyncio.Queue`` freely. A trident worker
runs trio; those calls fail there ("no running event loop"). So an actor whose code
uses asyncio gets an asyncio loop of its own, in a thread the actor host owns, and its
coroutine methods run there (its sync methods still run one at a time on its thread).
All of one actor's coroutines share that loop, so asyncio objects one method creates
are awaited by another, as under dask. Actors written for trio or anyio keep running
in the worker's trio loop.

`uses_asyncio` decides per actor, once, when it is hosted: the actor is an asyncio
actor when its instance holds an asyncio object (``self.ready = asyncio.Event()``) or
the code of its class names asyncio (the module, or anything taken from it) and never
names trio. Code that reaches asyncio only through another library is not seen.

Task functions (``async def`` submitted with `Client.submit`) are decided the same way
from their own code (`function_uses_asyncio`); those written for asyncio share one
asyncio loop per worker (`AsyncioTaskLoop`).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import CodeType, FunctionType, ModuleType
from typing import Any, TypeVar

import trio

T = TypeVar("T")

_ASYNCIO = "asyncio"
_TRIO = "trio"


def _library_of(value: Any) -> str | None:
    """``"asyncio"`` or ``"trio"`` when `value` is that module or comes from it."""
    name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
    if not isinstance(name, str):
        return None
    root = name.partition(".")[0]
    return root if root in (_ASYNCIO, _TRIO) else None


def _codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _codes(constant)


def _functions(cls: type) -> Iterator[FunctionType]:
    for klass in cls.__mro__:
        if klass is object:
            continue
        for attribute in vars(klass).values():
            if isinstance(attribute, (staticmethod, classmethod)):
                attribute = attribute.__func__
            if isinstance(attribute, property):
                candidates = [attribute.fget, attribute.fset, attribute.fdel]
            else:
                candidates = [attribute]
            for candidate in candidates:
                candidate = getattr(candidate, "__wrapped__", candidate)
                if isinstance(candidate, FunctionType):
                    yield candidate


def _add_libraries_named_by(function: FunctionType, found: set[str]) -> None:
    namespace = function.__globals__
    for code in _codes(function.__code__):
        for name in code.co_names:
            if name in (_ASYNCIO, _TRIO):
                found.add(name)
                continue
            value = namespace.get(name, getattr(builtins, name, None))
            library = _library_of(value) if value is not None else None
            if library is not None:
                found.add(library)


def libraries_named(cls: type) -> set[str]:
    """Which of asyncio and trio the code of `cls` (methods, nested functions,
    properties, base classes) names: as a module, imported inside a method, or through a
    name taken from it (``from asyncio import Queue``)."""
    found: set[str] = set()
    for function in _functions(cls):
        _add_libraries_named_by(function, found)
    return found


def function_uses_asyncio(function: Any) -> bool:
    """True when the task function `function` (an ``async def``, possibly wrapped in
    `functools.partial` or a decorator) names asyncio and never trio, as
    `uses_asyncio` decides for actors."""
    while True:
        inner = getattr(function, "__wrapped__", None) or getattr(function, "func", None)
        if inner is None or inner is function:
            break
        function = inner
    if not isinstance(function, FunctionType):
        return False
    found: set[str] = set()
    _add_libraries_named_by(function, found)
    return _ASYNCIO in found and _TRIO not in found


def uses_asyncio(instance: Any) -> bool:
    """True when the actor `instance` is written for asyncio (see the module docstring)."""
    state = getattr(instance, "__dict__", {})
    if any(_library_of(type(value)) == _ASYNCIO for value in state.values()):
        return True
    named = libraries_named(type(instance))
    return _ASYNCIO in named and _TRIO not in named


class AsyncioTaskLoop:
    """The asyncio loop a worker runs its asyncio task functions in (dask runs
    coroutine functions in the worker's asyncio loop, so they ``await asyncio.sleep``
    and use asyncio libraries): one `AsyncioActorLoop`, started when the first such task
    runs. `run` owns its thread: on cancellation it closes the loop and joins it.
    """

    def __init__(self, name: str):
        self._name = name
        self._loop: AsyncioActorLoop | None = None
        self._closed = False

    def get(self) -> AsyncioActorLoop:
        """The loop, started on first use (from the worker's trio loop)."""
        if self._closed:
            raise RuntimeError("the worker's asyncio loop for tasks is closed")
        if self._loop is None:
            self._loop = AsyncioActorLoop(self._name)
            self._loop.start()
        return self._loop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; then end the loop (cancelling its coroutines)."""
        from .executor import SHUTDOWN_GRACE_SECONDS, join_threads

        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self._closed = True
            if self._loop is not None:
                self._loop.close()
                with trio.CancelScope(shield=True):
                    await join_threads([self._loop.thread], SHUTDOWN_GRACE_SECONDS)


class AsyncioActorLoop:
    """An asyncio event loop in its own thread, for the coroutines of one actor.

    `start` starts the thread (the caller owns it and joins it); `run` runs one
    coroutine there and waits for it from trio; `close` cancels what still runs and
    ends the thread.
    """

    def __init__(self, name: str):
        self._loop = asyncio.new_event_loop()
        self._closed = False
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> threading.Thread:
        self.thread.start()
        return self.thread

    def _main(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def close(self) -> None:
        """Cancel the coroutines still running and end the thread (from any thread;
        returns at once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def run(self, function: Callable[[], Awaitable[T]], wrap: Callable[[], Any]) -> T:
        """Run ``await function()`` in the loop, inside the context manager ``wrap()``
        (entered in the loop's task), and return or raise what it did.

        A checkpoint: cancelling the wait cancels the coroutine in the loop (its
        ``finally`` blocks run there) without waiting for it to end.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # a forgotten actor cancels first
        if self._closed:
            raise RuntimeError("the actor's asyncio loop is closed")

        async def call() -> T:
            with wrap():
                return await function()

        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: concurrent.futures.Future[T]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        future.add_done_callback(wake)
        try:
            await done.wait()
        finally:
            if not future.done():
                future.cancel()
        return future.result()
