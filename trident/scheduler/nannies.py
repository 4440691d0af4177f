"""The scheduler's side of nannies: their records, the deaths they report, restarts.

`Nannies` is the sans-IO part of `SchedulerState` that handles nanny messages and
`Client.restart`; the records turn into the msgpack-friendly dicts of `scheduler_info`.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..protocol import messages as m
from .errors import InvalidMessage
from .records import WorkerRecord

logger = logging.getLogger("trident.scheduler")

#: How many worker deaths `scheduler_info` keeps (the latest ones).
DEATHS_KEPT = 50


@attrs.frozen
class WorkerDeath:
    """One worker process that died, as its nanny reported it."""

    nanny_id: str
    worker_name: str
    report: m.WorkerDied

    def as_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "nanny": self.nanny_id,
            "name": self.worker_name,
            "address": report.address,
            "pid": report.pid,
            "exit_code": report.exit_code,
            "signal": report.signal,
            "out_of_memory": report.out_of_memory,
            "reason": report.reason,
            "stderr": list(report.stderr_tail),
            "restart_in": report.restart_in,
            "time": report.time,
        }


@attrs.define
class NannyRecord:
    """One connected nanny and the worker process it supervises."""

    nanny_id: str
    worker_name: str
    host: str
    pid: int
    worker_address: str = ""
    worker_pid: int = 0
    starts: int = 0
    deaths: int = 0
    last_death: WorkerDeath | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.worker_name,
            "host": self.host,
            "pid": self.pid,
            "worker": self.worker_address,
            "worker_pid": self.worker_pid,
            "starts": self.starts,
            "deaths": self.deaths,
            "last_death": self.last_death.as_dict() if self.last_death is not None else None,
        }


@attrs.define(eq=False)
class PendingRestart:
    """A `Client.restart` waiting for nannies to report fresh workers.

    It is done when no nanny in `waiting` is left and none of the `replaced` workers is
    still registered, so the client's view of the cluster is current when it hears so.
    """

    client_id: str
    request_id: int
    restart_id: int
    waiting: set[str]
    replaced: list[WorkerRecord]
    #: answer with ``{address: "OK"}`` (`Client.restart_workers`), not a summary
    per_worker: bool = False


class Nannies:
    """The nannies of a cluster, the deaths they reported, and restarts in progress.

    A part of `SchedulerState` (sans-IO like it): it shares the state's worker table
    and outbox, and asks the state to drop a worker that a nanny reports dead
    (`remove_worker`), or passes the reason on when the worker is gone already
    (`death_reported`).
    """

    def __init__(
        self,
        workers: dict[str, WorkerRecord],
        send: Callable[[str, Any], None],
        remove_worker: Callable[[str, str], None],
        death_reported: Callable[[str, str], None],
    ):
        self.records: dict[str, NannyRecord] = {}
        #: the latest worker deaths, oldest first
        self.deaths: deque[WorkerDeath] = deque(maxlen=DEATHS_KEPT)
        self.restarts: list[PendingRestart] = []
        self._workers = workers
        self._send = send
        self._remove_worker = remove_worker
        self._death_reported = death_reported
        self._restart_ids = itertools.count(1)
        self._handlers: dict[type, Callable[[NannyRecord, Any], None]] = {
            m.WorkerStarted: self._on_worker_started,
            m.WorkerDied: self._on_worker_died,
        }

    def add(self, registration: m.RegisterNanny, scheduler_id: str) -> None:
        nanny_id = registration.nanny_id
        if nanny_id in self.records:
            raise InvalidMessage(f"nanny {nanny_id!r} is already connected")
        self.records[nanny_id] = NannyRecord(
            nanny_id, registration.worker_name, registration.host, registration.pid
        )
        self._send(nanny_id, m.NannyWelcome(scheduler_id))

    def remove(self, nanny_id: str) -> bool:
        """Forget a nanny; restarts stop waiting for it. False if it was not known."""
        if self.records.pop(nanny_id, None) is None:
            return False
        for pending in self.restarts:
            pending.waiting.discard(nanny_id)
        self.finish_restarts()
        return True

    def add_handler(self, kind: type, handler: Callable[[NannyRecord, Any], None]) -> None:
        """Handle nanny messages of type `kind` with ``handler(nanny, message)``."""
        self._handlers[kind] = handler

    def handle(self, nanny_id: str, message: Any) -> None:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise InvalidMessage(f"nannies may not send {type(message).__name__}")
        handler(self.records[nanny_id], message)

    def _on_worker_started(self, nanny: NannyRecord, msg: m.WorkerStarted) -> None:
        nanny.worker_address = msg.address
        nanny.worker_pid = msg.pid
        nanny.starts += 1
        if msg.restart_id is not None:
            for pending in self.restarts:
                if pending.restart_id == msg.restart_id:
                    pending.waiting.discard(nanny.nanny_id)
            self.finish_restarts()

    def _on_worker_died(self, nanny: NannyRecord, msg: m.WorkerDied) -> None:
        """Record and log why a worker died; drop it now if its connection lingers, else
        let verdicts that waited for the reason have it."""
        death = WorkerDeath(nanny.nanny_id, nanny.worker_name, msg)
        nanny.deaths += 1
        nanny.last_death = death
        self.deaths.append(death)
        tail = "".join(f"\n    {line}" for line in msg.stderr_tail)
        logger.warning(
            "worker %s (%s, pid %d) died: %s; its nanny restarts it in %.1f s%s",
            nanny.worker_name,
            msg.address or "not registered",
            msg.pid,
            msg.reason,
            msg.restart_in,
            f"\n  last lines of its stderr:{tail}" if tail else "",
        )
        if msg.address in self._workers:
            self._remove_worker(msg.address, msg.reason)
        elif msg.address:
            self._death_reported(msg.address, msg.reason)

    def restart(
        self,
        client_id: str,
        request_id: int,
        reason: str,
        *,
        wait: bool,
        nanny_ids: Iterable[str] | None = None,
    ) -> None:
        """Tell every nanny (or those of `nanny_ids`) to replace its worker; answer the
        client when all did (or at once if not `wait`)."""
        restart_id = next(self._restart_ids)
        chosen = set(self.records) if nanny_ids is None else set(nanny_ids)
        replaced = [
            self._workers[nanny.worker_address]
            for nanny_id, nanny in self.records.items()
            if nanny_id in chosen and nanny.worker_address in self._workers
        ]
        for nanny_id in chosen:
            self._send(nanny_id, m.RestartWorker(restart_id, reason))
        pending = PendingRestart(
            client_id, request_id, restart_id, chosen, replaced, nanny_ids is not None
        )
        if wait:
            self.restarts.append(pending)
            self.finish_restarts()
        else:
            self._answer(pending)

    def _answer(self, pending: PendingRestart) -> None:
        value: dict[str, Any] = {"restarted": len(pending.replaced), "workers": len(self._workers)}
        if pending.per_worker:
            value = {ws.address: "OK" for ws in pending.replaced}
        self._send(pending.client_id, m.Reply(pending.request_id, value, None))

    def finish_restarts(self) -> None:
        """Answer the clients whose restarts are complete."""
        for pending in list(self.restarts):
            if pending.waiting or any(
                self._workers.get(ws.address) is ws for ws in pending.replaced
            ):
                continue
            self.restarts.remove(pending)
            self._answer(pending)

    def forget_client(self, client_id: str) -> None:
        self.restarts = [p for p in self.restarts if p.client_id != client_id]

    def nanny_of(self) -> dict[str, str]:
        """Worker address -> the id of the nanny that supervises it."""
        return {nanny.worker_address: nanny_id for nanny_id, nanny in self.records.items()}

    def validate(self, clients: Iterable[str]) -> None:
        known_clients = set(clients)
        for pending in self.restarts:
            assert pending.waiting <= self.records.keys(), pending
            assert pending.client_id in known_clients, pending
