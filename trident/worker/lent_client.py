"""The client a worker lends to its tasks and actors, as the worker sees it.

The worker package never imports the client package: whoever builds a `Worker` (the
worker process's entry point, `LocalCluster`, ``trident worker``), which sits above both,
hands it a `ClientFactory` (`trident.cluster.lending.lend_client`). A worker built
without one lends no client: `get_client()` inside its tasks raises `RuntimeError`.
The worker runs the client it lends with `serve_lent_client`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ..security import Security

if TYPE_CHECKING:
    from .actor import Worker

logger = logging.getLogger("trident.worker")


class TaskClient(Protocol):
    """What the worker does with the client it lends."""

    async def serve(self, *, task_status: Any = ...) -> None:
        """Connect from the worker's loop and serve until cancelled."""
        ...

    def task_ended(self, key: str, *, succeeded: bool) -> None:
        """Task `key` ended; on failure its unfinished subtasks are cancelled."""
        ...

    def log_event(self, topic: str | list[str] | tuple[str, ...], msg: Any) -> None:
        """Store `msg` on the scheduler under `topic` (`Worker.log_event`); never waits."""
        ...


#: Builds the client `worker` lends, from the cluster's security (token included) and the
#: TLS context for connections (None without TLS). Called once the worker registered.
ClientFactory = Callable[["Worker", Security, "ssl.SSLContext | None"], TaskClient]


class _Readiness:
    """Passes a service's readiness on and remembers whether it was reported."""

    def __init__(self, task_status: trio.TaskStatus[None]):
        self._task_status = task_status
        self.reported = False

    def started(self, value: None = None) -> None:
        self.reported = True
        self._task_status.started(value)


async def serve_lent_client(
    client: TaskClient,
    who: str,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the client worker `who` lends; its failure is logged, never fatal to the worker.

    Reports readiness once the client is connected, or once it failed to connect.
    """
    readiness = _Readiness(task_status)
    try:
        await client.serve(task_status=readiness)
    except Exception:
        logger.exception("worker %s: its client stopped", who)
    if not readiness.reported:
        task_status.started()
