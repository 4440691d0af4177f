"""`Liveness`: when the scheduler last heard from each peer, and who has been silent.

The sans-IO clock of `SchedulerState`. The actor reports every packet it reads from a
registered worker or client (`heard_from`) and calls `SchedulerState.tick(now)` once per
heartbeat interval; `tick` asks this class which peers were silent for longer than
their timeout and which disconnected clients stayed away longer than their grace
period. Times are whatever clock the actor uses (``trio.current_time()``); only
differences matter.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class LivenessSettings:
    """How often peers must be heard from, and how long absences are tolerated.

    Attributes:
        heartbeat_interval: seconds between the scheduler's heartbeats to its peers
            (and between ticks of its clock).
        worker_timeout: a worker silent for this long is removed as if it died.
        client_timeout: a client silent for this long is disconnected.
        client_grace: a disconnected client that has not resumed within this many
            seconds is gone for good: its tasks are released.
        death_report_wait: how long a `KilledWorker` verdict waits for the nanny's
            report of why the worker died, once its connection dropped.
        worker_stall: a worker silent for this long is *stalled*: it gets no new work
            and its queued tasks go elsewhere (`stalls`); must exceed the workers'
            heartbeat interval.
        lost_data_grace: how long data that cannot be recomputed is awaited from a
            worker that may come back (removed for silence, or its connection dropped
            and its nanny has not reported it dead) before it is declared lost
            (`lost_data`).
    """

    heartbeat_interval: float = 1.0
    worker_timeout: float = 60.0
    client_timeout: float = 60.0
    client_grace: float = 60.0
    death_report_wait: float = 2.0
    worker_stall: float = 5.0
    lost_data_grace: float = 30.0


class Liveness:
    """Last-heard times of connected workers and clients, and clients that are away."""

    def __init__(self, settings: LivenessSettings | None = None):
        self.settings = settings or LivenessSettings()
        #: the time of the latest tick
        self.now = 0.0
        self._workers: dict[str, float] = {}
        self._clients: dict[str, float] = {}
        #: client id -> when its connection ended (it may still resume)
        self.away: dict[str, float] = {}

    def heard_from(self, peer: str, now: float) -> None:
        """Anything arrived from `peer` at `now` (unknown peers are ignored)."""
        if peer in self._workers:
            self._workers[peer] = now
        elif peer in self._clients:
            self._clients[peer] = now

    def worker_joined(self, address: str) -> None:
        self._workers[address] = self.now

    def worker_left(self, address: str) -> None:
        self._workers.pop(address, None)

    def client_joined(self, client_id: str) -> None:
        """The client connected (or resumed): it is present and was just heard from."""
        self.away.pop(client_id, None)
        self._clients[client_id] = self.now

    def client_left(self, client_id: str, *, for_good: bool) -> None:
        """The client's connection ended; unless `for_good`, it is away and may resume."""
        self._clients.pop(client_id, None)
        if for_good:
            self.away.pop(client_id, None)
        else:
            self.away[client_id] = self.now

    def is_away(self, client_id: str) -> bool:
        return client_id in self.away

    def advance(self, now: float) -> tuple[list[str], list[str], list[str]]:
        """Move the clock to `now`; return (silent workers, silent clients, clients
        whose grace period ended). Nothing is removed here: the state does that."""
        self.now = now
        settings = self.settings
        worker_deadline = now - settings.worker_timeout
        client_deadline = now - settings.client_timeout
        grace_deadline = now - settings.client_grace
        silent_workers = [a for a, t in self._workers.items() if t < worker_deadline]
        silent_clients = [c for c, t in self._clients.items() if t < client_deadline]
        expired = [c for c, t in self.away.items() if t < grace_deadline]
        return silent_workers, silent_clients, expired

    def quiet_workers(self, now: float, seconds: float) -> list[str]:
        """Workers not heard from for more than `seconds` at `now`."""
        deadline = now - seconds
        return [a for a, t in self._workers.items() if t < deadline]

    def present(self) -> list[str]:
        """Every connected worker and client (the peers heartbeats go to)."""
        return [*self._workers, *self._clients]

    def validate(self, workers: set[str], clients: set[str]) -> None:
        assert self._workers.keys() == workers, (self._workers.keys(), workers)
        assert self._clients.keys() | self.away.keys() == clients
        assert not self._clients.keys() & self.away.keys()
