"""Noticing a silent scheduler, and trying again to reach one that was lost.

Used by clients, workers and nannies (under trio and asyncio alike, through anyio): the
scheduler sends every peer a `Heartbeat` at least once per heartbeat interval, so a
connection that stays silent for much longer is as good as broken, even when no error
says so (a half-open TCP connection, a scheduler whose process is stopped).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from .handshake import AuthenticationError

T = TypeVar("T")

#: Seconds a peer waits for anything from the scheduler before treating it as lost.
SCHEDULER_TIMEOUT = 60.0
#: Seconds a peer keeps trying to reach a lost scheduler before it gives up.
RECONNECT_TIMEOUT = 60.0
#: The first and the longest pause between two attempts to reconnect.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0


class SilenceWatch:
    """When the peer was last heard from; `wait` returns once it stayed silent too long.

    Call `heard` whenever anything arrives (once per packet is enough).
    """

    __slots__ = ("last", "timeout")

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.last = anyio.current_time()

    def heard(self) -> None:
        self.last = anyio.current_time()

    async def wait(self) -> None:
        """Return once nothing was heard for `timeout` seconds (a checkpoint)."""
        while True:
            remaining = self.last + self.timeout - anyio.current_time()
            if remaining <= 0:
                return
            await anyio.sleep(remaining)


async def reconnect(
    attempt: Callable[[], Awaitable[T]],
    *,
    within: float,
    what: str,
    logger: logging.Logger,
) -> T | None:
    """Call `attempt` until it succeeds, with growing pauses, for at most `within` seconds.

    Returns its result, or None once the time is up. Connection failures (`OSError`,
    `TimeoutError`, a closed connection) are retried; a refused token
    (`AuthenticationError`) means the address now hosts another cluster and ends the
    attempts at once (logged). `what` names the caller in logs. Checkpoints; cancel it to
    stop trying.
    """
    deadline = anyio.current_time() + within
    delay = FIRST_RETRY_DELAY
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - anyio.current_time()
        try:
            with anyio.fail_after(max(remaining, 0.01)):
                return await attempt()
        except AuthenticationError as exc:
            logger.warning("%s: the scheduler refused us when reconnecting: %s", what, exc)
            return None
        except Exception as exc:
            logger.debug("%s: reconnection attempt %d failed: %r", what, attempts, exc)
        pause = delay * (0.5 + random.random())
        if anyio.current_time() + pause >= deadline:
            logger.warning(
                "%s: could not reach the scheduler again within %g s (%d attempts)",
                what,
                within,
                attempts,
            )
            return None
        await anyio.sleep(pause)
        delay = min(delay * 2, MAX_RETRY_DELAY)
