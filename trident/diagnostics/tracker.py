"""`ProgressTracker`: counts how many of some futures are done, as they finish.

It listens to the futures' states in their client's event loop (no polling) and keeps
counts per key prefix (the function name: ``inc-1f3a…`` counts as ``inc``), updated in
O(1) per finished future. Readers get `ProgressUpdate` snapshots (O(groups)), can wait
in the client's event loop for the next change (`wait_async`), and can wait for the end
from a thread (`wait_finished`) or from the event loop (`wait_finished_async`): bars
that redraw on a timer do not wake up for every one of 10,000 futures a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import anyio
import attrs

from .._keys import key_prefix
from ..client.future import CANCELLED, ERROR, LOST, Future, FutureState
from ..protocol import messages as m

logger = logging.getLogger("trident.client")


class Counts(NamedTuple):
    """How many futures of a group are done, in all, and how many of those failed."""

    done: int
    total: int
    errors: int


@attrs.frozen
class ProgressUpdate:
    """The progress of some futures at one moment.

    Attributes:
        done: futures that are no longer pending (finished, failed or cancelled).
        total: futures tracked.
        errors: futures that failed, were cancelled or were lost.
        elapsed: seconds since tracking started.
        groups: counts per key prefix (the task's function name), in first-seen order.
    """

    done: int
    total: int
    errors: int
    elapsed: float
    groups: dict[str, Counts]

    @property
    def fraction(self) -> float:
        """Done as a fraction of the total (1.0 when there is nothing to track)."""
        return self.done / self.total if self.total else 1.0

    @property
    def complete(self) -> bool:
        """True once every tracked future is done."""
        return self.done >= self.total


_FAILED = (ERROR, CANCELLED, LOST)


class ProgressTracker:
    """Counts of done futures, updated by listeners on the futures' states.

    Arguments:
        futures: the futures to track (duplicates count once).
        complete: also count futures already done now (False tracks only the rest).
        graph: count every task behind the futures (the tasks they depend on too, as
            dask's progress of a collection does), from the scheduler's view, brought
            up to date by `refresh_graph` / `refresh_graph_async`; the futures still
            decide when it is complete.

    Call `close` to stop listening.
    """

    def __init__(self, futures: Iterable[Future], complete: bool = True, graph: bool = False):
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._version = 0
        self._async_wakeups: list[anyio.Event] = []
        self._finished = threading.Event()
        self._finish_wakeups: list[anyio.Event] = []
        self._callbacks: list[Callable[[], None]] = []
        unique: dict[str, Future] = {}
        for future in futures:
            unique.setdefault(future._state.key, future)  # the key as it travels
        tracked = [f for f in unique.values() if complete or not f.done()]
        self._groups: dict[str, str] = {f._state.key: key_prefix(f._state.key) for f in tracked}
        self._totals: dict[str, int] = {}
        for group in self._groups.values():
            self._totals[group] = self._totals.get(group, 0) + 1
        #: per group: [done, failed]
        self._counts: dict[str, list[int]] = {group: [0, 0] for group in self._totals}
        self._errors = 0
        self._done: dict[str, bool] = {}  # key -> failed?
        self._listening: list[tuple[Future, FutureState]] = []
        self._graph_client = tracked[0].client if graph and tracked else None
        #: per group, from the scheduler (graph mode, once refreshed)
        self._graph_counts: dict[str, Counts] | None = None
        for future in tracked:
            state = future._state
            if future.client._future_watch.add_listener(state, self._on_transition):
                self._listening.append((future, state))
            else:
                self._count(state)
        if len(self._done) == len(self._groups):
            self._finished.set()

    def _count(self, state: FutureState) -> None:
        """Bring the counts up to date with `state` (the lock held or not yet shared)."""
        key = state.key
        counts = self._counts[self._groups[key]]
        failed = self._done.pop(key, None)
        if failed is not None:
            counts[0] -= 1
            counts[1] -= failed
            self._errors -= failed
        if state.done():  # else: lost data is being recomputed
            failed = state.status in _FAILED
            self._done[key] = failed
            counts[0] += 1
            counts[1] += failed
            self._errors += failed

    def _on_transition(self, state: FutureState) -> None:
        """A tracked state moved (called in its client's event loop)."""
        with self._lock:
            self._count(state)
            self._version += 1
            wakeups = self._async_wakeups
            if wakeups:
                self._async_wakeups = []
            callbacks = list(self._callbacks) if self._callbacks else ()
            finished = len(self._done) == len(self._groups)
            if finished:
                wakeups = [*wakeups, *self._finish_wakeups]
                self._finish_wakeups = []
                self._finished.set()
        for event in wakeups:
            event.set()
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("a progress display failed to update")
        if finished:
            self.close()

    def add_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change (in the futures' event loop)."""
        with self._lock:
            self._callbacks.append(callback)

    def snapshot(self) -> ProgressUpdate:
        """The counts now."""
        return self.versioned_snapshot()[1]

    def versioned_snapshot(self) -> tuple[int, ProgressUpdate]:
        """The counts now, with the version they belong to (see `wait_async`)."""
        with self._lock:
            version = self._version
            done, errors = len(self._done), self._errors
            groups = {
                name: Counts(counts[0], self._totals[name], counts[1])
                for name, counts in self._counts.items()
            }
            total = len(self._groups)
            graph = self._graph_counts
            if graph is not None:
                finished = self._finished.is_set()
                # Once every future is done, so is everything behind them.
                groups = {
                    name: Counts(c.total, c.total, c.errors) if finished else c
                    for name, c in graph.items()
                }
                done = sum(c.done for c in groups.values())
                total = sum(c.total for c in groups.values())
                errors = sum(c.errors for c in groups.values())
        return version, ProgressUpdate(
            done=done,
            total=total,
            errors=errors,
            elapsed=time.monotonic() - self._start,
            groups=groups,
        )

    def refresh_graph(self) -> None:
        """Graph mode: fetch the counts of every task behind the futures (blocks the
        calling thread; a blocking client's). Does nothing otherwise."""
        client = self._graph_client
        if client is not None:
            client._sync(self.refresh_graph_async)

    async def refresh_graph_async(self) -> None:
        """`refresh_graph` in the client's event loop. A checkpoint."""
        client = self._graph_client
        if client is None:
            await anyio.lowlevel.checkpoint()
            return
        keys = list(self._groups)
        found = await client._scheduler_link.request(lambda rid: m.GraphProgress(rid, keys))
        counts = {prefix: Counts(*numbers) for prefix, numbers in found.items()}
        with self._lock:
            self._graph_counts = counts
            self._version += 1

    @property
    def version(self) -> int:
        """A number that grows with every change."""
        return self._version

    def wait_finished(self, timeout: float | None) -> bool:
        """Block until every future is done or `timeout` passes; True if all are done."""
        return self._finished.wait(timeout)

    async def wait_finished_async(self) -> None:
        """Wait in the futures' event loop until every future is done. A checkpoint."""
        with self._lock:
            event = None
            if not self._finished.is_set():
                event = anyio.Event()
                self._finish_wakeups.append(event)
        if event is None:
            await anyio.lowlevel.checkpoint()
        else:
            await event.wait()

    async def wait_async(self, version: int) -> int:
        """Wait in the futures' event loop until the version passes `version`.

        A checkpoint; call it from the event loop of the futures' client.
        """
        with self._lock:
            if self._version != version:
                current = self._version
            else:
                event = anyio.Event()
                self._async_wakeups.append(event)
                current = -1
        if current != -1:
            await anyio.lowlevel.checkpoint()
            return current
        await event.wait()
        return self._version

    def close(self) -> None:
        """Stop listening to the futures."""
        listening, self._listening = self._listening, []
        for future, state in listening:
            future.client._future_watch.remove_listener(state, self._on_transition)
