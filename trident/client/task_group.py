"""`TaskGroup`: a nursery for remote work (``async with client.task_group() as tg``).

Futures submitted through the group belong to the block. Leaving the block waits for
all of them. If one fails, every unfinished one is cancelled on the cluster, the body of
the block is cancelled (async form), and the block raises an `ExceptionGroup` of the
failures — like a trio nursery. If the body raises, or the block is cancelled from
outside, the group's unfinished work is cancelled on the cluster before the error or
the cancellation propagates.

The blocking form (``with client.task_group() as tg``) cannot interrupt the body, but
cancels the remote work the same way and raises the same `ExceptionGroup`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from .._public import publish
from .future import ERROR, LOST, PENDING, Future, FutureState

if TYPE_CHECKING:
    from .client import Client

_FAILED = (ERROR, LOST)


class TaskGroup:
    """Remote work that lives and dies with a block of code (see the module docstring)."""

    def __init__(self, client: Client, name: str = "task group"):
        self._client = client
        self.name = name
        self._futures: list[Future] = []
        self._failures: list[Future] = []
        self._lock = threading.Lock()
        self._scope: anyio.CancelScope | None = None
        self._entered = False

    # --- submitting ---------------------------------------------------------------------

    def submit(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """`Client.submit`, with the future owned by this group."""
        future = self._client.submit(func, *args, **kwargs)
        self._own([future])
        return future

    def map(
        self, func: Callable[..., Any], *iterables: Iterable[Any], **kwargs: Any
    ) -> list[Future]:
        """`Client.map`, with the futures owned by this group."""
        futures = self._client.map(func, *iterables, **kwargs)
        self._own(futures)
        return futures

    def _own(self, futures: list[Future]) -> None:
        if not self._entered:
            raise RuntimeError("submit through a task group inside its 'with' block")
        core = self._client._core
        for future in futures:
            with self._lock:
                self._futures.append(future)
            state = future._state
            listener = self._listener(future)
            if not core.add_listener(state, listener) and state.status in _FAILED:
                core.call_soon(self._on_failure, future)

    def _listener(self, future: Future) -> Callable[[FutureState], None]:
        def on_transition(state: FutureState) -> None:
            if state.status == PENDING:
                return
            state.remove_listener(on_transition)
            if state.status in _FAILED:
                self._on_failure(future)

        return on_transition

    def _on_failure(self, future: Future) -> None:
        """A member failed (in the client's loop): cancel the rest and the body."""
        with self._lock:
            if future in self._failures:
                return
            self._failures.append(future)
        self._cancel_unfinished(f"another task of the {self.name} failed ({future.key!r})")
        if self._scope is not None:
            self._scope.cancel()

    def _cancel_unfinished(self, reason: str) -> None:
        with self._lock:
            keys = [f._key for f in self._futures if f._state.status == PENDING]
        if keys:
            self._client._core.cancel_now(keys, False, reason)

    def _group_error(self, body_error: BaseException | None) -> BaseExceptionGroup | None:
        errors: list[BaseException] = []
        if body_error is not None:
            errors.append(body_error)
        for future in self._failures:
            errors.append(future._state.exception_object())
        if not errors:
            return None
        return BaseExceptionGroup(f"{len(errors)} error(s) in the {self.name}", errors)

    # --- the async form --------------------------------------------------------------

    async def __aenter__(self) -> TaskGroup:
        self._entered = True
        self._scope = anyio.CancelScope()
        self._scope.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._scope is not None
        scope, self._scope = self._scope, None
        error = exc
        if error is None:
            try:
                for future in list(self._futures):
                    if future._state.status == PENDING:
                        await future._state.wait()
            except BaseException as waiting_error:  # cancelled: by a failure or from outside
                error = waiting_error
        self._entered = False
        if error is not None:
            self._cancel_unfinished(f"the {self.name} was left early: {error!r}")
            swallowed = scope.__exit__(type(error), error, error.__traceback__)
        else:
            swallowed = scope.__exit__(None, None, None)
        if error is not None and not swallowed:
            if isinstance(error, anyio.get_cancelled_exc_class()):
                raise error  # an outer cancel scope: let it through
            group = self._group_error(error)
            assert group is not None
            raise group from None
        group = self._group_error(None)
        if group is not None:
            raise group
        return False

    # --- the blocking form -----------------------------------------------------------

    def __enter__(self) -> TaskGroup:
        if self._client.asynchronous:
            raise TypeError("use 'async with' for the task group of an asynchronous client")
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        if exc is not None:
            self._client._core.call_soon(
                self._cancel_unfinished, f"the {self.name} was left early: {exc!r}"
            )
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                return
            group = self._group_error(exc)
            raise group from None  # type: ignore[misc]
        for future in list(self._futures):
            state = future._state
            if state.status == PENDING:
                self._client._wait_blocking(state, None)
        group = self._group_error(None)
        if group is not None:
            raise group

    @property
    def futures(self) -> list[Future]:
        """The futures owned by this group, in submission order."""
        with self._lock:
            return list(self._futures)


publish(globals())
