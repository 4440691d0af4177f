"""How a `Client`'s calls reach the event loop of its `ClientCore`: the bridge.

A `Client` is composed of a `ClientCore` (the anyio engine: connection, futures,
requests, in `core.py`) and a bridge, which decides how a call from user code reaches
the core's event loop, what a wait for futures does meanwhile, and who owns the loop.
There are two:

- `OwnLoop` (here), for the clients users make: an asynchronous client runs in the
  caller's loop (calls return coroutines); a blocking one in a `LoopThread` it acquires
  (calls block the calling thread).
- `WorkerClient` (`worker_client.py`), for the client a worker lends to its tasks: the
  worker's own trio loop, where waits secede the calling task and tasks' subtasks are
  tracked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from .._loop_thread import LoopThread


class Bridge(Protocol):
    """The part of a `Client` that knows which loop it runs in (see the module)."""

    @property
    def asynchronous(self) -> bool:
        """True when calls return coroutines for the caller's loop to await."""
        ...

    @property
    def borrowed(self) -> bool:
        """True when the loop and the client's lifetime belong to someone else (a worker):
        closing the client then does nothing."""
        ...

    def run(self, async_fn: Callable[..., Any], *args: Any) -> Any:
        """``async_fn(*args)`` in the core's loop: a coroutine when `asynchronous`, else
        its result, blocking the calling thread. Raises `RuntimeError` when the loop is
        not running."""
        ...

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        """Entered around every wait for futures that are not done."""
        ...

    def submitted(self, keys: list[str]) -> None:
        """The calling code submitted tasks `keys`."""
        ...

    def forgotten(self, keys: list[str]) -> None:
        """Tasks `keys` no longer belong to whoever submitted them (`fire_and_forget`)."""
        ...


class OwnLoop:
    """The bridge of the clients users make: the caller's loop, or a `LoopThread`."""

    borrowed = False

    def __init__(self, asynchronous: bool):
        self._asynchronous = asynchronous
        #: the loop thread of a blocking client while it runs (see `acquire`)
        self.loop: LoopThread | None = None

    @property
    def asynchronous(self) -> bool:
        return self._asynchronous

    def acquire(self) -> LoopThread:
        """Take a share of the process's loop thread (a blocking client, when it starts)."""
        self.loop = LoopThread.acquire()
        return self.loop

    def release(self) -> None:
        """Give the loop thread back (a blocking client, when it closes). Idempotent."""
        if self.loop is not None:
            self.loop.release()
            self.loop = None

    def run(self, async_fn: Callable[..., Any], *args: Any) -> Any:
        if self._asynchronous:
            return async_fn(*args)
        if self.loop is None:
            raise RuntimeError("the client is not running")
        return self.loop.run(async_fn, *args)

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def submitted(self, keys: list[str]) -> None:
        pass

    def forgotten(self, keys: list[str]) -> None:
        pass
