"""What every coordination primitive shares: a name and the client it talks through."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client.client import Client


class Primitive:
    """A named object living on the scheduler, used through a client.

    `client` defaults to ``get_client()`` at first use: inside a task that is the
    worker's own client, elsewhere the default client. Methods that talk to the
    scheduler block with a blocking client and return awaitables with an
    asynchronous one (and inside ``async def`` tasks).
    """

    _prefix = "primitive"

    def __init__(self, name: str | None = None, client: Client | None = None):
        self.name = name or f"{self._prefix}-{uuid.uuid4().hex}"
        self._client = client

    @property
    def client(self) -> Client:
        """The client this object uses (resolved with ``get_client()`` on first use)."""
        if self._client is None:
            from ..client.worker_client import get_client

            self._client = get_client()
        return self._client

    def _sync(self, async_fn: Callable[..., Any], *args: Any) -> Any:
        return self.client._sync(async_fn, *args)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"
