"""Exceptions that trident raises to users (re-exported from `trident`)."""

from __future__ import annotations

import concurrent.futures

from ._public import publish
from .protocol.errors import ProtocolError


class AuthenticationError(ConnectionError):
    """The other side refused our credentials, or failed to prove its own."""


class CancelledError(concurrent.futures.CancelledError):
    """The future was cancelled (by `Future.cancel`, `Client.cancel` or a dependency).

    A subclass of `concurrent.futures.CancelledError` (an `Exception`), never of
    `asyncio.CancelledError`, so catching it cannot swallow a task's own cancellation.
    """


class KilledWorker(Exception):
    """A task was running on workers that died too many times; it is not retried again.

    `workers` are the workers that died while running it, oldest first, and `causes`
    why each died (``"killed by SIGSEGV"``, ``"exited with code 3"``, ``"out of memory:
    ..."``, as their nannies reported it; ``"its connection closed"`` when nothing
    supervised them). `reason` is the cause of the last death.
    """

    def __init__(
        self, key: str, workers: list[str], reason: str = "", causes: list[str] | None = None
    ):
        self.key = key
        self.workers = list(workers)
        self.reason = reason
        self.causes = list(causes) if causes is not None else [reason] * len(self.workers)
        deaths = ", ".join(
            f"{worker} ({cause})" if cause else worker
            for worker, cause in zip(self.workers, self.causes, strict=False)
        )
        text = f"task {key!r} was running when {len(self.workers)} workers died: {deaths}"
        super().__init__(text)

    def __reduce__(self) -> tuple:
        return (KilledWorker, (self.key, self.workers, self.reason, self.causes))


class ActorRestarted(Exception):
    """The actor's worker died while this call was in flight; the actor is being restarted.

    The call may or may not have run. Later calls go to the restarted actor.
    """


class ActorDied(Exception):
    """The actor is gone for good (its worker died with no restarts left, or it was
    released); this call and every later one fail with this error."""


class FutureLostError(Exception):
    """The data of a future is gone from the cluster and cannot be recomputed.

    Happens to scattered data whose only workers died, and to futures whose client lost
    the scheduler.
    """


class SchedulerLostError(FutureLostError):
    """The client lost its connection to the scheduler and the future did not survive it.

    Raised for futures whose key the scheduler no longer knows when the client
    reconnects (the scheduler restarted, or the client stayed away longer than the
    scheduler's grace period), for every pending future when the client gives up
    reconnecting, and for requests that were waiting for an answer when the connection
    broke. A `FutureLostError`, so code that handles lost data handles this too.
    """


class DependencyError(Exception):
    """A task named a dependency key the scheduler does not know."""


class SchedulerError(Exception):
    """The scheduler refused or failed a request; the message says why."""


__all__ = [
    "ActorDied",
    "ActorRestarted",
    "AuthenticationError",
    "CancelledError",
    "DependencyError",
    "FutureLostError",
    "KilledWorker",
    "ProtocolError",
    "SchedulerError",
    "SchedulerLostError",
]


class Reschedule(Exception):
    """Raise from a task to have the scheduler place it again, maybe on another worker.

    The run ends without a result or an error (it does not count as a failure or use a
    retry) and the task runs afresh; what it submitted meanwhile is cancelled.
    """


publish(globals())
