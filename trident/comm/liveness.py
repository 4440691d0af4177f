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

from .handshake import AuthenticationError, HandshakeInterrupted, ServerRefused

T = TypeVar("T")

#: Seconds a peer waits for anything from the scheduler before treating it as lost.
SCHEDULER_TIMEOUT = 60.0
#: Seconds a peer keeps trying to reach a lost scheduler before it gives up.
RECONNECT_TIMEOUT = 60.0
#: The first and the longest pause between two attempts to reconnect.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0
#: Seconds the attempt made when the time is up (after the last pause) may take at most.
LAST_ATTEMPT_TIME = 1.0


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


class ReconnectFailed(Exception):
    """`reconnect` gave up: out of time, or refused by a server that proved it is ours.

    `elapsed` is the real time spent trying (seconds), `attempts` how many were made,
    `cause` the last attempt's error and `refused` whether that was a proven refusal.
    """

    def __init__(self, *, elapsed: float, attempts: int, cause: BaseException, refused: bool):
        self.elapsed = elapsed
        self.attempts = attempts
        self.cause = cause
        self.refused = refused
        if refused:
            summary = f"the scheduler refused us after {elapsed:.1f} s: {cause}"
        else:
            summary = (
                f"tried for {elapsed:.1f} s ({attempts} attempt{'s' * (attempts != 1)}); "
                f"last error: {_describe(cause)}"
            )
        super().__init__(summary)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "the attempt timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def reconnect(
    attempt: Callable[[], Awaitable[T]],
    *,
    within: float,
    what: str,
    logger: logging.Logger,
) -> T:
    """Call `attempt` until it succeeds, with growing pauses, for `within` seconds.

    Returns its result. Every failure is retried until the time is up: a refused or reset
    connection, a timeout, a server closing during the handshake, and also a server that
    fails to prove it knows our token (whatever took the address is not trusted, and the
    real scheduler may still come back there; logged as a warning). Only a `Refused`
    carrying the proof of our token (`ServerRefused` with `proven`: our own cluster says
    no) ends the attempts at once. Raises `ReconnectFailed` (with the real elapsed time
    and the last cause) when it gives up. `what` names the caller in logs. Checkpoints;
    cancel it to stop trying.
    """
    start = anyio.current_time()
    deadline = start + within
    delay = FIRST_RETRY_DELAY
    # The attempt made once the time is up (after the last pause) still gets this long.
    last_attempt_time = min(LAST_ATTEMPT_TIME, within)
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - anyio.current_time()
        try:
            with anyio.fail_after(max(remaining, last_attempt_time)):
                return await attempt()
        except ServerRefused as exc:
            if exc.proven:
                failed = ReconnectFailed(
                    elapsed=anyio.current_time() - start, attempts=attempts, cause=exc, refused=True
                )
                logger.warning("%s: %s", what, failed)
                raise failed from exc
            cause: BaseException = exc
            logger.warning("%s: reconnection attempt %d: %s", what, attempts, exc)
        except HandshakeInterrupted as exc:
            cause = exc
            logger.debug("%s: reconnection attempt %d failed: %s", what, attempts, exc)
        except AuthenticationError as exc:
            cause = exc  # whatever answers there is not our scheduler (or not yet)
            logger.warning("%s: reconnection attempt %d: %s", what, attempts, exc)
        except Exception as exc:
            cause = exc
            logger.debug("%s: reconnection attempt %d failed: %r", what, attempts, exc)
        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            failed = ReconnectFailed(
                elapsed=anyio.current_time() - start, attempts=attempts, cause=cause, refused=False
            )
            logger.warning("%s: could not reach the scheduler again: %s", what, failed)
            raise failed from cause
        await anyio.sleep(min(delay * (0.5 + random.random()), remaining))
        delay = min(delay * 2, MAX_RETRY_DELAY)
