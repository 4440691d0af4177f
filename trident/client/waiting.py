"""Waiting on many futures: `wait`, `as_completed` and `fire_and_forget`.

All of them work with blocking and asynchronous clients: blocking forms block the
calling thread, asynchronous forms return awaitables / async iterators. Completions are
observed through listeners that the client's event loop calls on every transition.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, NamedTuple

import anyio

from .._public import publish
from ..protocol import messages as m
from ..sizes import parse_duration
from .future import ERROR, PENDING, Future, FutureState
from .structures import futures_of

ALL_COMPLETED = "ALL_COMPLETED"
FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"


class DoneAndNotDoneFutures(NamedTuple):
    done: set[Future]
    not_done: set[Future]


def _partition(futures: list[Future]) -> DoneAndNotDoneFutures:
    done = {f for f in futures if f.done()}
    return DoneAndNotDoneFutures(done, {f for f in futures if f not in done})


def _condition_met(futures: list[Future], return_when: str) -> bool:
    states = [f._state for f in futures]
    if return_when == ALL_COMPLETED:
        return all(s.status != PENDING for s in states)
    if return_when == FIRST_COMPLETED:
        return any(s.status != PENDING for s in states) or not states
    return any(s.status == ERROR for s in states) or all(s.status != PENDING for s in states)


class _Progress:
    """Which of a set of futures are pending or failed, kept up to date by a listener.

    Each transition costs O(1) (a set update), so waiting on n futures costs O(n) in
    all, not a scan of every future per completion. The listener may be called from
    the client's loop thread while the waiting thread registers it: `track` counts a
    future as pending before its listener exists and drops it if it was done already.
    """

    def __init__(self, return_when: str, on_met: Callable[[], object]) -> None:
        self._return_when = return_when
        self._on_met = on_met
        self._lock = threading.Lock()
        self._tracked: set[int] = set()
        self._pending: set[int] = set()
        self._failed: set[int] = set()
        #: False while `track` runs: no verdict until every future is counted
        self._complete = False
        self.registered: list[tuple[Any, FutureState]] = []

    def track(self, futures: list[Future]) -> None:
        """Listen to every future's transitions (each distinct state once); call
        `on_met` at once if the condition already holds, else from the listener."""
        for future in futures:
            state = future._state
            key = id(state)
            if key in self._tracked:
                continue
            self._tracked.add(key)
            with self._lock:
                self._pending.add(key)
            watch = future.client._future_watch
            if watch.add_listener(state, self.listener):
                self.registered.append((watch, state))
            else:
                self.listener(state)
        with self._lock:
            self._complete = True
            met = self.met()
        if met:
            self._on_met()

    def untrack(self) -> None:
        for watch, state in self.registered:
            watch.remove_listener(state, self.listener)
        self.registered.clear()

    def listener(self, state: FutureState) -> None:
        key = id(state)
        with self._lock:
            if state.status == PENDING:
                self._pending.add(key)
            else:
                self._pending.discard(key)
            if state.status == ERROR:
                self._failed.add(key)
            else:
                self._failed.discard(key)
            met = self._complete and self.met()
        if met:
            self._on_met()

    def met(self) -> bool:
        if not self._pending:
            return True
        if self._return_when == FIRST_COMPLETED:
            return len(self._pending) < len(self._tracked)
        return self._return_when == FIRST_EXCEPTION and bool(self._failed)


def wait(fs: Any, timeout: float | str | None = None, return_when: str = ALL_COMPLETED) -> Any:
    """Wait until futures are done; return ``(done, not_done)`` sets.

    `return_when` is ``ALL_COMPLETED``, ``FIRST_COMPLETED`` or ``FIRST_EXCEPTION``.
    Raises `TimeoutError` if `timeout` seconds (or text such as ``"10s"``) pass first.
    A coroutine when the futures belong to an asynchronous client.
    """
    if return_when not in (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION):
        raise ValueError(f"unknown return_when {return_when!r}")
    timeout = None if timeout is None else parse_duration(timeout)
    futures = futures_of(fs) if not isinstance(fs, Future) else [fs]
    if futures and futures[0].client.asynchronous:
        return _wait_async(futures, timeout, return_when)
    if not _condition_met(futures, return_when):
        _block_until(futures, return_when, timeout)
    return _partition(futures)


def _block_until(futures: list[Future], return_when: str, timeout: float | None) -> None:
    woken = threading.Event()
    progress = _Progress(return_when, woken.set)
    try:
        progress.track(futures)
        with futures[0].client._waiting():
            done = woken.is_set() or woken.wait(timeout)
        if not done:
            raise TimeoutError(f"futures not done after {timeout} s")
    finally:
        progress.untrack()


async def _wait_async(
    futures: list[Future], timeout: float | None, return_when: str
) -> DoneAndNotDoneFutures:
    if _condition_met(futures, return_when):
        await anyio.lowlevel.checkpoint()
        return _partition(futures)
    with anyio.fail_after(timeout), futures[0].client._waiting():
        if return_when == ALL_COMPLETED:
            for future in futures:
                if future._state.status == PENDING:
                    await future._state.wait()
        else:
            # Listeners run in this loop's thread, so setting the event is safe here.
            event = anyio.Event()
            progress = _Progress(return_when, event.set)
            try:
                progress.track(futures)
                await event.wait()
            finally:
                progress.untrack()
    return _partition(futures)


class as_completed:
    """Iterate over futures in the order they complete.

    Works as a blocking iterator and as an async iterator. `add` and `update` accept
    more futures while iterating. With ``with_results=True`` it yields
    ``(future, result)`` pairs; a failed future then raises its error (or, with
    ``raise_errors=False``, yields the exception as the result). With `timeout`, asking
    for a future once `timeout` seconds have passed since construction, while none is
    finished, raises `TimeoutError` (as dask's).
    """

    def __init__(
        self,
        futures: Iterable[Future] | None = None,
        loop: Any = None,
        with_results: bool = False,
        raise_errors: bool = True,
        *,
        timeout: float | str | None = None,
    ):
        timeout = None if timeout is None else parse_duration(timeout)
        self.with_results = with_results
        self.raise_errors = raise_errors
        #: as dask's: asking for the next future after `timeout` seconds (counted from
        #: here) with none finished raises `TimeoutError`
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._timeout = timeout
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._ready: deque[Future] = deque()
        self._pending: dict[int, Future] = {}
        self._async_event: anyio.Event | None = None
        if futures is not None:
            self.update(futures)

    def _on_transition(self, future: Future) -> Any:
        def listener(state: FutureState) -> None:
            if state.status == PENDING:
                return
            state.remove_listener(listener)
            self._mark_done(future)

        return listener

    def _mark_done(self, future: Future) -> None:
        with self._condition:
            if self._pending.pop(id(future), None) is None:
                return
            self._ready.append(future)
            self._condition.notify_all()
            event = self._async_event
        if event is not None:
            event.set()

    def add(self, future: Future) -> None:
        """Add one more future to wait for."""
        with self._condition:
            self._pending[id(future)] = future
        listener = self._on_transition(future)
        if not future.client._future_watch.add_listener(future._state, listener):
            self._mark_done(future)

    def update(self, futures: Iterable[Future]) -> None:
        for future in futures:
            self.add(future)

    def count(self) -> int:
        """Futures not yet yielded."""
        with self._lock:
            return len(self._pending) + len(self._ready)

    def is_empty(self) -> bool:
        return self.count() == 0

    def has_ready(self) -> bool:
        """True when a finished future waits to be yielded (the next ``next()`` returns
        at once)."""
        with self._lock:
            return bool(self._ready)

    def clear(self) -> None:
        """Forget every future not yet yielded."""
        with self._lock:
            self._pending.clear()
            self._ready.clear()

    def _item(self, future: Future) -> Any:
        if not self.with_results:
            return future
        try:
            return future, future.result()
        except Exception as exc:
            if self.raise_errors:
                raise
            return future, exc

    def __iter__(self) -> Iterator[Any]:
        return self

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        """What to enter while blocking for the next future (see `Client._waiting`)."""
        with self._lock:
            if self._ready or not self._pending:
                return contextlib.nullcontext()
            return next(iter(self._pending.values())).client._waiting()

    def _wait_slice(self) -> float:
        """How long one wait for a finished future may block; raises `TimeoutError`
        past the deadline."""
        if self._deadline is None:
            return 0.5
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"as_completed: no future finished within {self._timeout} s")
        return min(left, 0.5)

    def __next__(self) -> Any:
        with self._waiting(), self._condition:
            while not self._ready:
                if not self._pending:
                    raise StopIteration
                self._condition.wait(self._wait_slice())
            future = self._ready.popleft()
        return self._item(future)

    def next(self) -> Any:
        """The next finished future (or ``(future, result)``), as ``next(iterator)``."""
        return self.__next__()

    def next_batch(self, block: bool = True) -> list[Any]:
        """Every future ready now (waiting for at least one if `block`)."""
        with self._waiting() if block else contextlib.nullcontext(), self._condition:
            if block:
                while not self._ready and self._pending:
                    self._condition.wait(self._wait_slice())
            batch = list(self._ready)
            self._ready.clear()
        return [self._item(f) for f in batch]

    def batches(self) -> Iterator[list[Any]]:
        """Yield lists of futures as they complete, as many at a time as are ready."""
        while not self.is_empty():
            yield self.next_batch(block=True)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while True:
            with self._lock:
                if self._ready:
                    future = self._ready.popleft()
                    break
                if not self._pending:
                    raise StopAsyncIteration
                event = self._async_event = anyio.Event()
                client = next(iter(self._pending.values())).client
                wait_for = None if self._deadline is None else self._wait_slice()
            with client._waiting(), anyio.move_on_after(wait_for):
                await event.wait()
        if not self.with_results:
            return future
        try:
            return future, await future.result()
        except Exception as exc:
            if self.raise_errors:
                raise
            return future, exc


def fire_and_forget(obj: Any) -> None:
    """Run the tasks behind these futures to completion even after they are released."""
    by_client: dict[Any, list[str]] = defaultdict(list)
    for future in futures_of(obj):
        by_client[future.client].append(future._key)
    for client, keys in by_client.items():
        client._scheduler_link.enqueue(m.FireAndForget(keys))
        client._forget_submitted(keys)


publish(globals())
