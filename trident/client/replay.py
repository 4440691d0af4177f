"""Replaying a failed task in the caller's process: `Client.get_futures_error` and
`Client.recreate_error_locally`.

The scheduler follows an error back to the task that raised it and returns that task's
function and pickled arguments (see `scheduler.replay`). Its inputs are fetched as
futures (recomputed from lineage if their data was released), so the function can run
here, under a debugger, with exactly the arguments it got on the worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from ..protocol.serialize import loads, loads_task_args
from . import transfer
from .context import loading_for
from .future import ERROR, Future
from .structures import futures_of

if TYPE_CHECKING:
    from .client import Client


async def _failed_key(client: Client, futures: Any) -> str:
    """The key of the first failed future in `futures` (a future or a collection)."""
    found = futures_of(futures)
    for future in found:
        await future._state.wait()
    failed = [f for f in found if f._state.status == ERROR]
    if not failed:
        raise ValueError("No errored futures passed")
    return failed[0]._key


async def _cause(client: Client, futures: Any) -> tuple[Callable[..., Any], Any, list[str]]:
    key = await _failed_key(client, futures)
    cause = await client._scheduler_link.request(lambda rid: m.ErrorCause(rid, key))
    with loading_for(client):
        function = loads(cause["function"])
    return function, cause["args"], list(cause["dependencies"])


async def futures_error(client: Client, futures: Any) -> tuple[Any, tuple, dict[str, Any], list]:
    """``(function, args, kwargs, dependencies)`` of the task that caused the failure.

    Futures among the arguments appear as their keys, listed in `dependencies`; nothing
    is fetched from the cluster. Raises `ValueError` when no future failed and
    `SchedulerError` when the failure cannot be traced to a task.
    """
    function, payload, dependencies = await _cause(client, futures)
    with loading_for(client):
        args, kwargs = loads_task_args(payload, {key: key for key in dependencies})
    return function, args, kwargs, dependencies


async def failed_call(client: Client, futures: Any) -> tuple[Any, tuple, dict[str, Any]]:
    """``(function, args, kwargs)`` of the failed task, with its inputs fetched."""
    function, payload, dependencies = await _cause(client, futures)
    inputs = [Future._attach(key, client) for key in dependencies]
    values = await transfer.gather_values(client._core, [f._state for f in inputs])
    with loading_for(client):
        args, kwargs = loads_task_args(payload, values)
    return function, args, kwargs


async def recreate_async(client: Client, futures: Any) -> Any:
    """Run the failed task in this event loop (``async def`` functions are awaited)."""
    function, args, kwargs = await failed_call(client, futures)
    result = function(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result
