"""`Lock`, `Semaphore` and `MultiLock`: leases granted by the scheduler.

Waiting happens on the scheduler: an acquire is answered once the lease is free (or its
timeout passed), never by polling. A lease taken inside a task is given back when that
task fails or is cancelled or its worker dies, and every lease of a client is given back
when the client disconnects — so a crash never leaves a lock held for ever.
"""

from __future__ import annotations

import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from .base import Primitive
from .waiting import Done, caller_task, seconds, wait_for_answer

if TYPE_CHECKING:
    from ..client.client import Client


class _Leases(Primitive):
    """Acquire and release leases on `names` of namespace `_kind` (see the subclasses)."""

    _kind = "lock"
    #: what `release` raises when this object holds nothing (dask's choice per class)
    _not_held: type[Exception] = RuntimeError

    def __init__(
        self,
        names: list[str],
        name: str | None,
        client: Client | None,
        max_leases: int = 1,
    ):
        super().__init__(name, client)
        self.names = names or [self.name]
        self.max_leases = max_leases
        #: ids of the leases this object holds, oldest first
        self._held: deque[str] = deque()

    def _acquire(self, timeout: Any, count: int) -> Any:
        task, worker = caller_task()
        lease = uuid.uuid4().hex
        return self._sync(self._acquire_async, lease, count, seconds(timeout), task, worker)

    async def _acquire_async(
        self, lease: str, count: int, timeout: float | None, task: str | None, worker: str | None
    ) -> bool:
        core = self.client._scheduler_link
        kind, names, max_leases = self._kind, list(self.names), self.max_leases

        def build(request_id: int) -> m.AcquireLeases:
            return m.AcquireLeases(request_id, kind, names, count, max_leases, lease, task, worker)

        def give_back(granted: Any) -> None:
            core.enqueue(m.ReleaseLease(kind, lease))

        if await wait_for_answer(core, build, timeout, give_back):
            self._held.append(lease)
            return True
        return False

    def release(self) -> Any:
        """Give back this object's oldest lease; returns True (awaitable when asynchronous).

        Takes effect at once, without waiting for the scheduler. Raises `RuntimeError`
        (`ValueError` for a `MultiLock`, as in dask) when this object holds none.
        """
        try:
            lease = self._held.popleft()
        except IndexError:
            raise self._not_held(f"{self!r} is not acquired") from None
        self.client._scheduler_link.enqueue(m.ReleaseLease(self._kind, lease))
        return Done(True) if self.client.asynchronous else True

    def _count(self) -> Any:
        """How many leases on the first name are held, by anyone."""
        core = self.client._scheduler_link
        kind, name = self._kind, self.names[0]
        return self._sync(core.request, lambda rid: m.LeaseCount(rid, kind, name))

    def __enter__(self) -> Any:
        if self.client.asynchronous:
            raise TypeError(f"use 'async with' for a {type(self).__name__} of an async client")
        self._acquire(None, len(set(self.names)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> Any:
        await self._acquire(None, len(set(self.names)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    def __await__(self) -> Any:
        """``lock = await Lock(...)`` works as in dask (there is nothing to wait for)."""
        return Done(self).__await__()


class Lock(_Leases):
    """A lock shared by every client and task of the cluster (dask's `distributed.Lock`).

    Arguments:
        name: locks with the same name are the same lock; a random name by default.
        client: the client to use; ``get_client()`` by default (the worker's client
            inside tasks).

    Use it as a context manager (``with lock:``, ``async with lock:``) or call
    `acquire` and `release`. Not reentrant: acquiring a lock this object already holds
    waits for it to be released.
    """

    _prefix = "lock"
    _kind = "lock"

    def __init__(self, name: str | None = None, client: Client | None = None):
        super().__init__([], name, client)

    def acquire(self, blocking: bool = True, timeout: Any = None) -> Any:
        """Wait until this object holds the lock; return True, or False after `timeout`.

        `timeout` is in seconds (or a string such as ``"200ms"``); ``blocking=False``
        tries once. A lock granted just as the timeout passes is kept (True). With an
        asynchronous client this returns a coroutine; cancelling it never leaves the
        lock held. Raises `ValueError` for a timeout with ``blocking=False``.
        """
        if not blocking:
            if timeout is not None:
                raise ValueError("can't specify a timeout for a non-blocking call")
            timeout = 0
        return self._acquire(timeout, 1)

    def locked(self) -> Any:
        """True if anyone holds the lock now (a coroutine with an asynchronous client)."""
        if self.client.asynchronous:
            return self._locked_async()
        return bool(self._count())

    async def _locked_async(self) -> bool:
        return bool(await self._count())

    def __reduce__(self) -> tuple:
        return (Lock, (self.name,))


class Semaphore(_Leases):
    """At most `max_leases` holders at a time (dask's `distributed.Semaphore`).

    Arguments:
        max_leases: how many leases may be held at once.
        name: semaphores with the same name are the same semaphore (they must agree on
            `max_leases`); a random name by default.
        client: the client to use; ``get_client()`` by default.

    The scheduler forgets a semaphore once no lease is held or requested.
    """

    _prefix = "semaphore"
    _kind = "semaphore"

    def __init__(self, max_leases: int = 1, name: str | None = None, client: Client | None = None):
        if int(max_leases) < 1:
            raise ValueError("max_leases must be at least 1")
        super().__init__([], name, client, int(max_leases))

    def acquire(self, timeout: Any = None) -> Any:
        """Wait for a lease; return True, or False when `timeout` (seconds) passed first.

        A coroutine with an asynchronous client; cancelling it never leaves a lease
        held. Raises `SchedulerError` when another semaphore of this name has a
        different `max_leases`.
        """
        return self._acquire(timeout, 1)

    def get_value(self) -> Any:
        """How many leases are held now, by anyone (a coroutine when asynchronous)."""
        return self._count()

    def close(self) -> Any:
        """Give back every lease this object still holds."""
        core = self.client._scheduler_link
        while self._held:
            core.enqueue(m.ReleaseLease(self._kind, self._held.popleft()))
        return Done(None) if self.client.asynchronous else None

    def __reduce__(self) -> tuple:
        return (Semaphore, (self.max_leases, self.name))


class MultiLock(_Leases):
    """Several locks taken together, all or none (dask's `distributed.MultiLock`).

    Arguments:
        names: the names of the locks; they are the same locks as ``Lock(name)``.
        client: the client to use; ``get_client()`` by default.

    Waiting requests are served in arrival order and keep the locks they can already
    have, so a `MultiLock` is never starved by single locks and never deadlocks with
    another `MultiLock`.
    """

    _prefix = "multilock"
    _kind = "lock"
    _not_held = ValueError

    def __init__(self, names: list[str] | None = None, client: Client | None = None):
        names = list(names or [])
        if not names:
            raise ValueError("a MultiLock needs at least one name")
        super().__init__(names, None, client)

    def acquire(
        self, blocking: bool = True, timeout: Any = None, num_locks: int | None = None
    ) -> Any:
        """Wait until this object holds `num_locks` of its locks (all by default).

        Returns True, or False after `timeout` seconds; ``blocking=False`` tries once.
        A coroutine with an asynchronous client.
        """
        if not blocking:
            if timeout is not None:
                raise ValueError("can't specify a timeout for a non-blocking call")
            timeout = 0
        count = len(set(self.names)) if num_locks is None else int(num_locks)
        return self._acquire(timeout, count)

    def locked(self) -> bool:
        """True while this object holds its locks."""
        return bool(self._held)

    def __repr__(self) -> str:
        return f"<MultiLock: {self.names}>"

    def __reduce__(self) -> tuple:
        return (MultiLock, (self.names,))
