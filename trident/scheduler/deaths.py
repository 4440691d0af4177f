"""`WorkerDeaths`: why workers left, and `KilledWorker` verdicts that wait for the reason.

A worker's connection usually drops a moment before its nanny reports why the process
died (signal, exit code, out of memory). A task whose last allowed failure that death
was would fail with a useless "connection closed", so the verdict is held: the task
stays on the departed worker's books until the nanny's report arrives or
`LivenessSettings.death_report_wait` passes, then fails with `KilledWorker` naming
every worker it killed and why each died. Tasks that may still be retried are rerun at
once; their earlier deaths get the nanny's reason when it comes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from .._exceptions import KilledWorker
from .records import TaskRecord, WorkerRecord

#: Reasons remembered per worker address (the latest ones).
REASONS_KEPT = 10_000
#: The reason of a worker whose connection dropped and nobody said why.
CONNECTION_CLOSED = "its connection closed"


class WorkerDeaths:
    """Reasons of recent worker departures, and departed workers whose verdicts wait.

    `fail` is called with each held task when its verdict is due; the state fails it
    with `killed_worker(ts)`.
    """

    def __init__(self, fail: Callable[[TaskRecord], None]):
        self._fail = fail
        self.reasons: OrderedDict[str, str] = OrderedDict()
        #: departed worker address -> (its record, when its held verdicts are due)
        self.held: dict[str, tuple[WorkerRecord, float]] = {}

    def record(self, address: str, reason: str) -> None:
        """`address` left for `reason` (a nanny's report is not overwritten)."""
        if self.reasons.get(address) not in (None, CONNECTION_CLOSED):
            return
        self._remember(address, reason)

    def _remember(self, address: str, reason: str) -> None:
        self.reasons[address] = reason
        self.reasons.move_to_end(address)
        while len(self.reasons) > REASONS_KEPT:
            self.reasons.popitem(last=False)

    def hold(self, ws: WorkerRecord, due: float) -> None:
        """Keep the tasks left in `ws.processing` until `reported` or `due`."""
        self.held[ws.address] = (ws, due)

    def is_held(self, ws: WorkerRecord) -> bool:
        entry = self.held.get(ws.address)
        return entry is not None and entry[0] is ws

    def reported(self, address: str, reason: str) -> None:
        """A nanny said why the worker at `address` died: settle what waited for it."""
        self._remember(address, reason)
        self._settle(address)

    def expire(self, now: float) -> None:
        """Settle held verdicts that are due at `now`, reason known or not."""
        for address in [a for a, (_, due) in self.held.items() if due <= now]:
            self._settle(address)

    def _settle(self, address: str) -> None:
        entry = self.held.pop(address, None)
        if entry is None:
            return
        ws = entry[0]
        for ts in list(ws.processing):
            del ws.processing[ts]
            ts.processing_on = None
            self._fail(ts)

    def killed_worker(self, ts: TaskRecord) -> KilledWorker:
        """The error of a task that killed too many workers, each named with its cause."""
        workers = list(ts.workers_died or ())
        causes = [self.reasons.get(address, CONNECTION_CLOSED) for address in workers]
        return KilledWorker(ts.key, workers, causes[-1] if causes else "", causes)
