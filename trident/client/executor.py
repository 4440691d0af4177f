"""`ClientExecutor`: a `concurrent.futures.Executor` on top of a `Client`
(`Client.get_executor`).

Its futures are genuine `concurrent.futures.Future` objects, so they work with
`concurrent.futures.wait` and `as_completed`, ``asyncio.wrap_future`` and
``loop.run_in_executor``; each follows a trident `Future` (cancelling it cancels the
task on the cluster).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .future import CANCELLED, FINISHED, Future

if TYPE_CHECKING:
    from .client import Client


class _TaskFuture(concurrent.futures.Future):
    """A `concurrent.futures.Future` that follows the trident future `task`."""

    def __init__(self, task: Future):
        super().__init__()
        self.task = task

    def cancel(self) -> bool:
        client = self.task.client
        if not self.task.done():
            if client.asynchronous:
                client._core.call_soon(client._core.cancel_now, [self.task._key], False, None)
            else:
                client.cancel([self.task])
        return super().cancel()


class ClientExecutor(concurrent.futures.Executor):
    """Runs ``submit(fn, *args, **kwargs)`` and ``map`` on the cluster of `client`.

    `options` (``workers``, ``resources``, ``retries``, ``priority``, ``pure``, ...)
    apply to every task; ``pure`` defaults to False (every call runs, as executors do).
    """

    def __init__(self, client: Client, **options: Any):
        self._client = client
        self._options = {"pure": False, **options}
        self._lock = threading.Lock()
        self._pending: set[_TaskFuture] = set()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> _TaskFuture:
        """Run ``fn(*args, **kwargs)`` on the cluster; a `concurrent.futures.Future`."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            task = self._client.submit(fn, *args, **{**self._options, **kwargs})
            future = _TaskFuture(task)
            self._pending.add(future)
        task.add_done_callback(lambda _: self._settle(future))
        return future

    def _settle(self, future: _TaskFuture) -> None:
        """The task is done: carry its outcome over (in the client's callback context)."""
        with self._lock:
            self._pending.discard(future)
        task = future.task
        state = task._state
        if state.status == CANCELLED:
            future.cancel()
            future.set_running_or_notify_cancel()
            return
        if state.status != FINISHED:
            self._set(future, exception=state.exception_object())
        elif self._client.asynchronous:
            self._client._core.spawn(self._fetch, future)
        else:
            try:
                value = task.result()
            except BaseException as exc:
                self._set(future, exception=exc)
            else:
                self._set(future, value=value)

    async def _fetch(self, future: _TaskFuture) -> None:
        try:
            value = await future.task._result_async(None)
        except BaseException as exc:
            self._set(future, exception=exc)
        else:
            self._set(future, value=value)

    @staticmethod
    def _set(
        future: _TaskFuture, *, value: Any = None, exception: BaseException | None = None
    ) -> None:
        if not future.set_running_or_notify_cancel():
            return
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(value)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more calls; with `cancel_futures` (or ``wait=False``) cancel the
        unfinished ones; with `wait` wait for the rest."""
        with self._lock:
            self._shutdown = True
            pending = list(self._pending)
        if cancel_futures or not wait:
            for future in pending:
                future.cancel()
        if wait:
            concurrent.futures.wait(pending)
