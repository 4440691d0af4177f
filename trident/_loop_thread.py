"""`LoopThread`: one trio event loop in a background thread, for blocking callers.

Blocking clients and clusters started outside an async program live in this loop. It is
shared by everything in the process that needs it, started on first use and stopped
(and its thread joined) when the last user releases it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


#: Why a blocking call inside ``trio.run`` is refused, and what to do instead.
BLOCKING_IN_TRIO = (
    "a blocking trident call was made inside trio.run, where it would block the event "
    "loop: use asynchronous=True in async code (async with Client(..., "
    "asynchronous=True) as client, async with LocalCluster(..., asynchronous=True)) and "
    "await the client's methods, or make the blocking call in a thread "
    "(trio.to_thread.run_sync)"
)


def in_trio_run() -> bool:
    """Whether the calling thread is running a trio event loop (``trio.run``)."""
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


class LoopThread:
    """A trio loop in a thread: run coroutines in it and host long-lived services."""

    _instance: LoopThread | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._users = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="trident-loop", daemon=True)
        self._error: BaseException | None = None

    @classmethod
    def acquire(cls) -> LoopThread:
        """The process's loop thread, started if needed; pair with `release`."""
        with cls._instance_lock:
            loop = cls._instance
            if loop is None:
                loop = cls._instance = LoopThread()
                loop._thread.start()
                loop._started.wait()
                if loop._error is not None:
                    cls._instance = None
                    raise RuntimeError("the trident event loop failed to start") from loop._error
            loop._users += 1
            return loop

    def release(self) -> None:
        """Drop one use; the last one stops the loop and joins its thread."""
        with LoopThread._instance_lock:
            self._users -= 1
            if self._users > 0:
                return
            if LoopThread._instance is self:
                LoopThread._instance = None
        self._stop()

    def _stop(self) -> None:
        if self._token is not None and self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._cancel_all)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    def _cancel_all(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the thread that waits in acquire()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._started.set()
            await trio.sleep_forever()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``async_fn(*args)`` in the loop and block until it returns (or raises).

        Raises `RuntimeError` when called from trident's loop thread or from inside
        another ``trio.run`` (it would block that loop: asynchronous APIs belong there).
        """
        if self.in_loop_thread:
            raise RuntimeError(
                "a blocking trident call was made from trident's own event loop thread; "
                "use an asynchronous client there"
            )
        if in_trio_run():
            raise RuntimeError(BLOCKING_IN_TRIO)
        return trio.from_thread.run(async_fn, *args, trio_token=self._token)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn(*args)`` in the loop; safe from any thread."""
        assert self._token is not None
        self._token.run_sync_soon(fn, *args)

    def start_service(self, service: Callable[..., Awaitable[Any]]) -> Any:
        """Start ``service(task_status=...)`` in the loop's nursery; return what it reports.

        The service then runs until it returns or is cancelled from within the loop.
        """

        async def start() -> Any:
            assert self._nursery is not None
            return await self._nursery.start(service)

        return self.run(start)
