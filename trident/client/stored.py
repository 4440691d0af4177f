"""Values the scheduler stores for clients (queues, variables, topics, datasets).

`pack` pickles a value the way task arguments are pickled: every `Future` inside, at any
depth, becomes a reference to its key, so the scheduler knows which keys to keep alive.
`unpack` rebuilds the value for a client with a `Future` of that client in place of each
reference, then acknowledges the handoff that kept the keys alive on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from ..protocol.serialize import Serialized, dumps_task_args, loads_task_args
from ..protocol.unpicklable import unpicklable_error
from .context import loading_for
from .future import Future

if TYPE_CHECKING:
    from .client import Client


def pack(value: Any, what: str) -> m.StoredValue:
    """Pickle `value` for the scheduler; `what` names it in errors.

    Raises `SerializationError` (naming the part that fails) for unpicklable values.
    """
    try:
        payload, keys = dumps_task_args((value,), {})
    except Exception as exc:
        raise unpicklable_error(what, {"value": value}, exc) from exc
    return m.StoredValue(payload, keys)


def unpack(client: Client, payload: Serialized, keys: list[str], handoff: int | None) -> Any:
    """The value of a stored payload, with futures bound to `client`.

    Acknowledges `handoff` (after the futures exist) even when unpickling fails, which
    raises the unpickling error.
    """
    try:
        futures = {key: Future._attach(key, client) for key in keys}
        with loading_for(client):
            args, _ = loads_task_args(payload, futures)
        return args[0]
    finally:
        if handoff is not None:
            client._scheduler_link.enqueue(m.HandoffsDone([handoff]))


def acknowledge(client: Client, handoff: int | None) -> None:
    """Acknowledge a handoff whose value will not be unpacked."""
    if handoff is not None:
        client._scheduler_link.enqueue(m.HandoffsDone([handoff]))
