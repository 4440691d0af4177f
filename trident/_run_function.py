"""Running a function sent by `Client.run` or `Client.run_on_scheduler` in this process.

The function runs in the event loop of the actor that received it (worker, scheduler or
nanny), like dask's: a sync function blocks that loop while it runs and sees the
actor's state without locks; a coroutine function is awaited there, or started in the
background when the caller does not wait. A parameter named after the actor (for
example ``dask_worker`` or ``trident_worker``) receives the actor object.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import trio

from .protocol import messages as m
from .protocol.failures import error_info
from .protocol.serialize import dumps, loads

logger = logging.getLogger("trident")

#: The keyword parameters that receive the actor a function runs in, by actor kind.
ACTOR_PARAMETERS = {
    "worker": ("dask_worker", "trident_worker"),
    "scheduler": ("dask_scheduler", "trident_scheduler"),
}


def accepted_parameters(function: Any) -> set[str]:
    """The names `function` accepts as keyword arguments (empty if it has no signature)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


async def run_function(
    call: m.RunFunction,
    actor: object,
    kind: str,
    *,
    nursery: trio.Nursery,
    address: str,
) -> m.RunResult:
    """Run the function of `call` here and package what it returned or raised.

    `actor` is passed to the parameters that `ACTOR_PARAMETERS[kind]` names; `nursery`
    hosts a coroutine that the caller does not wait for; `address` names this process
    in errors. Never raises (except for cancellation).
    """
    try:
        function = loads(call.function)
        args, kwargs = loads(call.args)
        names = accepted_parameters(function)
        for name in ACTOR_PARAMETERS[kind]:
            if name in names:
                kwargs[name] = actor
        if inspect.iscoroutinefunction(function):
            if not call.wait:
                nursery.start_soon(_run_detached, function, args, kwargs)
                return m.RunResult(call.request_id, dumps(None), None)
            value = await function(*args, **kwargs)
        else:
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        return m.RunResult(call.request_id, dumps(value), None)
    except Exception as exc:
        return m.RunResult(call.request_id, None, error_info(exc, address))


async def _run_detached(function: Any, args: tuple, kwargs: Mapping[str, Any]) -> None:
    try:
        await function(*args, **kwargs)
    except Exception:
        logger.exception("a function run without waiting for it failed")
