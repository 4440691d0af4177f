"""Turning a call into a `TaskSpec`: its key, its pickled function and arguments, its
scheduling options.

`Client.submit`, `Client.map` and graph submission (`collections`) build their specs
here; nothing here touches a connection. Pickling failures raise `SerializationError`
naming the culprit (`protocol.unpicklable`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._keys import encode_key
from .._unique import unique_hex
from ..protocol import messages as m
from ..protocol.serialize import Serialized, dumps_function, dumps_task_args, token_of
from ..protocol.unpicklable import unpicklable_error
from .admin import restriction_names

#: Concurrent ``async def`` method calls per actor, unless `max_concurrency` says otherwise.
DEFAULT_MAX_CONCURRENCY = 1000


@attrs.frozen
class TaskOptions:
    """Scheduling options shared by the tasks of one `submit` or `map` call."""

    priority: int = 0
    retries: int | None = None
    workers: Any = None
    allow_other_workers: bool = False
    resources: dict[str, float] | None = None
    timeout: float | None = None
    actor: m.ActorOptions | None = None


def pop_actor_options(kwargs: dict[str, Any]) -> m.ActorOptions:
    """Take ``max_restarts`` and ``max_concurrency`` out of `kwargs`.

    Raises `ValueError` for a negative ``max_restarts`` or a ``max_concurrency``
    below 1.
    """
    max_restarts = int(kwargs.pop("max_restarts", 0))
    max_concurrency = int(kwargs.pop("max_concurrency", DEFAULT_MAX_CONCURRENCY))
    if max_restarts < 0 or max_concurrency < 1:
        raise ValueError("max_restarts must be >= 0 and max_concurrency >= 1")
    return m.ActorOptions(max_restarts, max_concurrency)


def function_name(func: Callable[..., Any]) -> str:
    """The name keys of `func`'s tasks start with (``lambda`` for lambdas)."""
    while hasattr(func, "func"):  # functools.partial
        func = func.func
    name = getattr(func, "__name__", None) or type(func).__name__
    return "lambda" if name == "<lambda>" else name


def pickle_function(func: Callable[..., Any]) -> tuple[Serialized, str]:
    """`dumps_function`, raising a `SerializationError` that names what fails."""
    try:
        return dumps_function(func)
    except Exception as exc:
        what = f"the function {function_name(func)!r}"
        raise unpicklable_error(what, {"function": func}, exc) from exc


def task_spec(
    func: Callable[..., Any],
    function_token: str,
    args: tuple,
    kwargs: dict[str, Any],
    key: str | None,
    pure: bool,
    options: TaskOptions,
    prefix: str | None = None,
) -> m.TaskSpec:
    """The spec of the task ``func(*args, **kwargs)``.

    `key` is a wire key (`trident._keys.encode_key` of the user's). Without one, one is
    made from `prefix` (or the function's name) and either a token of the function and
    arguments (`pure`) or a random id. Raises `SerializationError` if the arguments
    cannot be pickled.
    """
    try:
        payload, dependencies = dumps_task_args(args, kwargs)
    except Exception as exc:
        task = f"task {key!r}" if key else f"a task of {prefix or function_name(func)!r}"
        roots: dict[str, object] = {"args": args, "kwargs": kwargs}
        raise unpicklable_error(f"the arguments of {task}", roots, exc) from exc
    if key is None:
        name = prefix or function_name(func)
        if pure:
            key = f"{name}-{token_of(function_token, payload.header, *payload.buffers)}"
        else:
            key = f"{name}-{unique_hex()}"
        key = encode_key(key)  # a prefix of the user's may read like an encoded key
    return m.TaskSpec(
        key,
        function_token,
        payload,
        dependencies,
        int(options.priority),
        int(options.retries or 0),
        restriction_names(options.workers),
        bool(options.allow_other_workers),
        dict(options.resources) if options.resources else None,
        float(options.timeout) if options.timeout is not None else None,
        options.actor,
    )
