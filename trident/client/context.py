"""Which client the calling code should use: `current_client` and `get_client`.

Values that bind to a client when they are unpickled (actor handles, futures) use
`current_client`: inside a task or an actor method that is the worker's own client;
while a client loads results, that client; otherwise the default client.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

_loading_for: contextvars.ContextVar[Client | None] = contextvars.ContextVar(
    "trident_loading_client", default=None
)


@contextmanager
def loading_for(client: Client) -> Iterator[None]:
    """Values unpickled in this block bind to `client`."""
    token = _loading_for.set(client)
    try:
        yield
    finally:
        _loading_for.reset(token)


def current_client() -> Client:
    """The client for the calling context (see the module docstring).

    Raises `ValueError` when there is none.
    """
    from .worker_client import lent_client

    lent = lent_client()
    if lent is not None:
        return lent
    client = _loading_for.get()
    if client is not None:
        return client
    from .client import default_client

    return default_client()
