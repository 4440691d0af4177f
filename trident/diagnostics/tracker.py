"""`ProgressTracker`: counts how many of some futures are done, as they finish.

It listens to the futures' states in their client's event loop (no polling) and keeps
counts per key prefix (the function name: ``inc-1f3a…`` counts as ``inc``). Readers get
`ProgressUpdate` snapshots and can wait for the next change from a thread
(`wait_blocking`) or from the client's event loop (`wait_async`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import anyio
import attrs

from ..client.future import CANCELLED, ERROR, LOST, Future, FutureState
from ..scheduler.records import key_prefix

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

    Call `close` to stop listening.
    """

    def __init__(self, futures: Iterable[Future], complete: bool = True):
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._async_wakeups: list[anyio.Event] = []
        self._callbacks: list[Callable[[], None]] = []
        unique: dict[str, Future] = {}
        for future in futures:
            unique.setdefault(future.key, future)
        tracked = [f for f in unique.values() if complete or not f.done()]
        self._groups: dict[str, str] = {f.key: key_prefix(f.key) for f in tracked}
        self._totals: dict[str, int] = {}
        for group in self._groups.values():
            self._totals[group] = self._totals.get(group, 0) + 1
        self._done: dict[str, bool] = {}  # key -> failed?
        self._listening: list[tuple[Future, FutureState]] = []
        for future in tracked:
            state = future._state
            if future.client._core.add_listener(state, self._on_transition):
                self._listening.append((future, state))
            else:
                self._done[future.key] = state.status in _FAILED

    def _on_transition(self, state: FutureState) -> None:
        """A tracked state moved (called in its client's event loop)."""
        with self._lock:
            if state.done():
                self._done[state.key] = state.status in _FAILED
            else:
                self._done.pop(state.key, None)  # lost data is being recomputed
            self._version += 1
            self._changed.notify_all()
            wakeups, self._async_wakeups = self._async_wakeups, []
            callbacks = list(self._callbacks)
            finished = len(self._done) == len(self._groups)
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
        """The counts now, with the version they belong to (see `wait_blocking`)."""
        with self._lock:
            done = dict(self._done)
            version = self._version
        counts = {group: [0, total, 0] for group, total in self._totals.items()}
        for key, failed in done.items():
            group = counts[self._groups[key]]
            group[0] += 1
            group[2] += failed
        return version, ProgressUpdate(
            done=len(done),
            total=len(self._groups),
            errors=sum(done.values()),
            elapsed=time.monotonic() - self._start,
            groups={name: Counts(*values) for name, values in counts.items()},
        )

    @property
    def version(self) -> int:
        """A number that grows with every change."""
        return self._version

    def wait_blocking(self, version: int, timeout: float | None) -> int:
        """Block until the version passes `version` or `timeout` passes; the new version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

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
            future.client._core.remove_listener(state, self._on_transition)
