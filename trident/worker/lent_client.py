"""The client a worker lends to its tasks and actors, as the worker sees it.

The worker package never imports the client package: whoever builds a `Worker` (the
worker process's entry point, `LocalCluster`, ``trident worker``), which sits above both,
hands it a `ClientFactory` (`trident.cluster.lending.lend_client`). A worker built
without one lends no client: `get_client()` inside its tasks raises `RuntimeError`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..security import Security

if TYPE_CHECKING:
    from .actor import Worker


class TaskClient(Protocol):
    """What the worker does with the client it lends."""

    async def serve(self, *, task_status: Any = ...) -> None:
        """Connect from the worker's loop and serve until cancelled."""
        ...

    def task_ended(self, key: str, *, succeeded: bool) -> None:
        """Task `key` ended; on failure its unfinished subtasks are cancelled."""
        ...


#: Builds the client `worker` lends, from the cluster's security (token included) and the
#: TLS context for connections (None without TLS). Called once the worker registered.
ClientFactory = Callable[["Worker", Security, "ssl.SSLContext | None"], TaskClient]
