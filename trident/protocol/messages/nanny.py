"""Messages between a nanny and the scheduler, both ways.

A nanny supervises one worker process and keeps its own connection to the scheduler
(handshake role "nanny"): it reports its worker's starts and deaths, and restarts the
worker when told to (`Client.restart`). It also takes `CloseWorker`, `RunFunction`
and `Heartbeat` from `common`.
"""

from __future__ import annotations

from ..registry import message

# --- nanny -> scheduler ---


@message("reg-nanny")
class RegisterNanny:
    """First message of a nanny after the handshake (`Nanny.serve`)."""

    nanny_id: str
    worker_name: str
    host: str
    pid: int


@message("worker-started")
class WorkerStarted:
    """Its worker process is up and registered at `address`.

    `restart_id` names the `RestartWorker` this start answers (None for a first start
    or a restart after a death).
    """

    address: str
    pid: int
    restart_id: int | None


@message("worker-died")
class WorkerDied:
    """Its worker process ended without being asked to.

    `exit_code` is None when a signal (`signal`, e.g. ``"SIGKILL"``) ended it;
    `reason` is one human-readable line; `stderr_tail` the last lines the process
    wrote to stderr; `restart_in` the back-off before the nanny starts it again;
    `time` the nanny's wall clock when it noticed.
    """

    address: str
    pid: int
    exit_code: int | None
    signal: str | None
    out_of_memory: bool
    reason: str
    stderr_tail: list[str]
    restart_in: float
    time: float


# --- scheduler -> nanny ---


@message("nanny-welcome")
class NannyWelcome:
    """Answer to `RegisterNanny`: the nanny is part of the cluster."""

    scheduler_id: str


@message("restart-worker")
class RestartWorker:
    """`Client.restart`: stop the worker process and start a fresh one."""

    restart_id: int
    reason: str


#: Everything a nanny sends the scheduler (besides `Common` messages).
NannyToScheduler = RegisterNanny | WorkerStarted | WorkerDied

#: Everything the scheduler sends a nanny (besides `Common` messages).
SchedulerToNanny = NannyWelcome | RestartWorker
