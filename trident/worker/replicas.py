"""`ReplicaAcquisitions`: the scheduler's `AcquireReplicas` on a worker, sans-IO.

`rebalance`, `replicate` and retiring workers ask a worker to copy keys from the
workers that hold them. The copies go through the worker's ordinary fetch queue (so the
per-peer fetch limits hold for them too): each wanted key becomes a data task in
``fetch`` state that is kept, as a computed result is, once it arrives. One
`ReplicasAcquired` answers each request once every key arrived or ran out of holders.
Part of `WorkerState`, which calls `acquired` when a wanted key arrives or is given up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..protocol import messages as m
from .tasks import FETCH, FLIGHT, MEMORY, WorkerTask


@attrs.define(eq=False)
class Acquisition:
    """An `AcquireReplicas` in progress: keys still fetched, and what came of the rest."""

    waiting: set[str]
    nbytes: dict[str, int] = attrs.Factory(dict)
    missing: list[str] = attrs.Factory(list)


class ReplicaAcquisitions:
    """The acquisitions of one worker.

    Arguments:
        address: the worker's own address (never a holder to fetch from).
        tasks: the worker's tasks by key (shared with `WorkerState`).
        fetch_queue: the worker's fetch queue (shared; wanted keys join it).
        report: sends a message to the scheduler.
    """

    def __init__(
        self,
        address: str,
        tasks: dict[str, WorkerTask],
        fetch_queue: dict[WorkerTask, None],
        report: Callable[[Any], None],
    ):
        self._address = address
        self._tasks = tasks
        self._fetch_queue = fetch_queue
        self._report = report
        #: operation -> the acquisition still fetching
        self.pending: dict[int, Acquisition] = {}

    def start(self, msg: m.AcquireReplicas) -> None:
        """Fetch a copy of each key from its holders (in order) and keep it.

        Keys already here count as acquired; a key this worker is computing right now
        is reported missing (there is nothing to copy yet).
        """
        acquisition = Acquisition(set())
        for key, holders in msg.who_has.items():
            ts = self._tasks.get(key)
            if ts is not None and ts.state == MEMORY:
                ts.is_compute = True  # kept until the scheduler frees it
                acquisition.nbytes[key] = ts.nbytes
                continue
            if ts is None:
                ts = WorkerTask(key, is_compute=False)
                ts.state = FETCH
                self._tasks[key] = ts
                self._fetch_queue[ts] = None
            elif ts.state not in (FETCH, FLIGHT):
                acquisition.missing.append(key)
                continue
            for holder in holders:
                if holder not in ts.who_has and holder != self._address:
                    ts.who_has.append(holder)
            if ts.acquiring is None:
                ts.acquiring = []
            ts.acquiring.append(msg.operation)
            acquisition.waiting.add(key)
        self.pending[msg.operation] = acquisition
        self._progressed(msg.operation)

    def acquired(self, ts: WorkerTask, nbytes: int | None) -> None:
        """`ts` arrived (`nbytes`) or cannot be had (None) for the acquisitions wanting it;
        an arrived replica is kept until the scheduler frees it."""
        operations, ts.acquiring = ts.acquiring or [], None
        if nbytes is not None:
            ts.is_compute = True
        for operation in operations:
            acquisition = self.pending.get(operation)
            if acquisition is None:
                continue
            acquisition.waiting.discard(ts.key)
            if nbytes is None:
                acquisition.missing.append(ts.key)
            else:
                acquisition.nbytes[ts.key] = nbytes
            self._progressed(operation)

    def _progressed(self, operation: int) -> None:
        acquisition = self.pending[operation]
        if not acquisition.waiting:
            del self.pending[operation]
            self._report(m.ReplicasAcquired(operation, acquisition.nbytes, acquisition.missing))

    def check(self) -> None:
        """Every key an acquisition waits for is a task that knows it is wanted."""
        for operation, acquisition in self.pending.items():
            for key in acquisition.waiting:
                ts = self._tasks[key]
                assert operation in (ts.acquiring or ()), (operation, key)
                assert ts.state in (FETCH, FLIGHT), ts
