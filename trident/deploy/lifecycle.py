"""Running actors in the foreground: stop cleanly on Ctrl-C or SIGTERM, or when the
actor itself ends."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import trio

logger = logging.getLogger("trident.deploy")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def cancel_on_signals(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Cancel `scope` on the first SIGINT or SIGTERM.

    Start it with ``await nursery.start(...)``: once it reports started, the signals no
    longer raise `KeyboardInterrupt` but stop the process through `scope`, so every
    actor's cleanup (stopping worker processes, removing files) runs.
    """
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            logger.info("received %s: stopping", signal.Signals(signum).name)
            scope.cancel()
            return


async def serve_then_cancel(
    serve: Callable[..., Awaitable[None]],
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an actor's ``serve(task_status=...)``; cancel `scope` when it returns.

    Start it with ``await nursery.start(...)`` to get what the actor reports.
    """
    await serve(task_status=task_status)
    scope.cancel()
