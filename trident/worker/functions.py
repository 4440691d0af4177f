"""`FunctionCache`: the task functions the scheduler defined on a worker, unpickled once.

The scheduler sends each function once per worker (`DefineFunction`, carried out as the
state's `LoadFunction`); tasks name it by its content token. A function that cannot be
unpickled is kept as a stand-in that raises the unpickling error when a task calls it,
so the task fails with that error instead of the worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ..protocol.serialize import Serialized, loads
from .asyncio_actors import function_uses_asyncio


class FunctionLoadError:
    """Stands in for a function that could not be unpickled; calling it re-raises."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


def actor_constructor(cls: Any, restarts: int) -> Callable[..., Any]:
    """Build an actor instance; a restart uses ``cls.on_restart`` when the class has one."""
    constructor: Callable[..., Any] = cls
    if restarts > 0 and callable(getattr(cls, "on_restart", None)):
        constructor = cls.on_restart
    return constructor


class FunctionCache:
    """Functions by token, and which of them are ``async def`` (and of those, which are
    written for asyncio: `function_uses_asyncio`)."""

    def __init__(self, owner: str):
        """`owner` names the worker in the error of a task whose function is unknown."""
        self._owner = owner
        self._functions: dict[str, Callable[..., Any]] = {}
        self._async: set[str] = set()
        self._asyncio: set[str] = set()

    def load(self, token: str, function: Serialized) -> None:
        """Unpickle `function` under `token` (a failure is kept as a `FunctionLoadError`)."""
        try:
            loaded = loads(function)
        except Exception as exc:
            loaded = FunctionLoadError(exc)
        self._functions[token] = loaded
        if inspect.iscoroutinefunction(loaded):
            self._async.add(token)
            if function_uses_asyncio(loaded):
                self._asyncio.add(token)

    def forget(self, tokens: Iterable[str]) -> None:
        """Drop the functions under `tokens` (the scheduler's `ForgetFunctions`), so that
        what they hold is freed; tasks already running keep theirs."""
        for token in tokens:
            self._functions.pop(token, None)
            self._async.discard(token)
            self._asyncio.discard(token)

    def get(self, token: str) -> Callable[..., Any]:
        """The function under `token`; one that raises if the worker does not know it."""
        function = self._functions.get(token)
        if function is None:
            error = RuntimeError(f"worker {self._owner} does not know function {token!r}")
            return FunctionLoadError(error)
        return function

    def is_async(self, token: str) -> bool:
        return token in self._async

    def uses_asyncio(self, token: str) -> bool:
        """The ``async def`` function under `token` is written for asyncio."""
        return token in self._asyncio
