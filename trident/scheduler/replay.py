"""Where a failure came from: the scheduler's side of `Client.get_futures_error`.

A task that fails passes its error, the same `ErrorInfo`, to every dependent that can
no longer run. Following dependencies that carry that same error leads back to the task
that raised it; its function and arguments stay on the scheduler while any erred
dependent is wanted (the dependent keeps the record for lineage).
"""

from __future__ import annotations

from typing import Any

from ..protocol.serialize import Serialized
from .records import ERRED, TaskRecord


class NoErrorCause(Exception):
    """The key did not fail, is unknown, or its failure cannot be replayed."""


def error_origin(ts: TaskRecord) -> TaskRecord:
    """The task whose own run raised the error `ts` carries (maybe `ts` itself)."""
    seen = {ts}
    while True:
        origin = next(
            (
                dep
                for dep in ts.dependencies
                if dep.state == ERRED
                and dep not in seen
                and (dep.error is ts.error or dep.error == ts.error)
            ),
            None,
        )
        if origin is None:
            return ts
        seen.add(origin)
        ts = origin


def error_cause(
    tasks: dict[str, TaskRecord], functions: dict[str, Serialized], key: str
) -> dict[str, Any]:
    """What `Client.get_futures_error` needs about the failure of `key`.

    Returns ``{"key", "function", "args", "dependencies"}`` of the task that raised
    (function and args as payloads). Raises `NoErrorCause` when `key` is unknown, did
    not fail, or the failing key was never computed by a task (scattered data).
    """
    ts = tasks.get(key)
    if ts is None:
        raise NoErrorCause(f"the scheduler does not know key {key!r}")
    if ts.state != ERRED:
        raise NoErrorCause(f"key {key!r} did not fail (it is {ts.state})")
    origin = error_origin(ts)
    if origin.function is None or origin.args is None or origin.function not in functions:
        raise NoErrorCause(f"key {origin.key!r} was not computed by a task; nothing to replay")
    return {
        "key": origin.key,
        "function": functions[origin.function],
        "args": origin.args,
        "dependencies": [dep.key for dep in origin.dependencies],
    }
