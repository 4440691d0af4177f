"""`Future` (the user's handle on a remote result) and `FutureState` (shared per key).

Every `Future` object of one key in one client shares a `FutureState`. The client's
event loop moves states from ``pending`` to ``finished``, ``error``, ``cancelled`` or
``lost`` and wakes whoever waits: async waiters through events of the loop, blocking
waiters through thread events, and internal listeners (as_completed, callbacks).

Futures are reference-counted by the client: when the last `Future` object of a key is
garbage collected, the client tells the scheduler to release the key.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import tblib

from .._exceptions import CancelledError, FutureLostError
from .._html import html_table
from .._keys import decode_key, encode_key
from .._public import publish
from ..protocol.messages import ErrorInfo, TaskSpec
from ..protocol.serialize import Serialized, loads, register_future_type
from ..sizes import parse_duration

if TYPE_CHECKING:
    from .client import Client

PENDING = "pending"
FINISHED = "finished"
ERROR = "error"
CANCELLED = "cancelled"
LOST = "lost"


class FutureState:
    """The status and outcome of one key, as this client knows it."""

    __slots__ = (
        "_async_events",
        "_listeners",
        "_thread_events",
        "error",
        "function_payload",
        "key",
        "nbytes",
        "payload",
        "reason",
        "spec",
        "status",
        "type_name",
    )

    def __init__(self, key: str, status: str = PENDING):
        self.key = key
        self.status = status
        self.type_name = ""
        self.nbytes = 0
        self.payload: Serialized | None = None
        self.error: ErrorInfo | None = None
        self.reason = ""
        #: the task as submitted, kept until its first outcome arrives: a submission
        #: lost with a broken connection is sent again when the client resumes
        self.spec: TaskSpec | None = None
        #: the payload of the spec's function when it is not kept by the client (see
        #: `is_kept_function`): it goes with the spec if that is sent again
        self.function_payload: Serialized | None = None
        self._async_events: list[anyio.Event] | None = None
        self._thread_events: list[threading.Event] | None = None
        self._listeners: list[Callable[[FutureState], None]] | None = None

    def done(self) -> bool:
        return self.status != PENDING

    # --- transitions (the client's loop thread, under the client's lock) -----------

    def set_finished(self, type_name: str, nbytes: int, payload: Serialized | None) -> None:
        self.status = FINISHED
        self.spec = self.function_payload = None
        self.type_name = type_name
        self.nbytes = nbytes
        self.payload = payload
        self.error = None

    def set_error(self, error: ErrorInfo) -> None:
        self.status = ERROR
        self.spec = self.function_payload = None
        self.error = error
        self.payload = None

    def set_cancelled(self, reason: str) -> None:
        self.status = CANCELLED
        self.spec = self.function_payload = None
        self.reason = reason
        self.payload = None

    def set_lost(self, error: ErrorInfo) -> None:
        self.status = LOST
        self.spec = self.function_payload = None
        self.error = error
        self.payload = None

    def reset(self) -> None:
        self.status = PENDING
        self.payload = None
        self.error = None

    def take_waiters(self) -> tuple[list[Any], list[Callable[[FutureState], None]]]:
        """Detach the waiters to wake after a transition (call under the lock)."""
        events: list[Any] = []
        if self._async_events:
            events.extend(self._async_events)
            self._async_events = None
        if self._thread_events:
            events.extend(self._thread_events)
            self._thread_events = None
        listeners = self._listeners or []
        return events, list(listeners)

    # --- waiting ------------------------------------------------------------------------

    async def wait(self) -> None:
        """Wait in the client's event loop until the state is no longer pending."""
        if self.status != PENDING:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        if self._async_events is None:
            self._async_events = []
        self._async_events.append(event)
        try:
            await event.wait()
        finally:
            if self._async_events is not None and event in self._async_events:
                self._async_events.remove(event)

    def wait_blocking(self, lock: threading.Lock, timeout: float | None) -> bool:
        """Block the calling thread until done; False if `timeout` passed first."""
        with lock:
            if self.status != PENDING:
                return True
            event = threading.Event()
            if self._thread_events is None:
                self._thread_events = []
            self._thread_events.append(event)
        return event.wait(timeout)

    def add_listener(self, listener: Callable[[FutureState], None]) -> None:
        """Call `listener(state)` in the loop thread after every transition."""
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[FutureState], None]) -> None:
        if self._listeners and listener in self._listeners:
            self._listeners.remove(listener)

    # --- outcomes ----------------------------------------------------------------------

    def exception_object(self) -> BaseException:
        """The exception a waiter should see for a state that is not finished."""
        if self.status == CANCELLED:
            return CancelledError(f"future {self.key!r} was cancelled: {self.reason}")
        if self.error is None:
            return FutureLostError(f"future {self.key!r} has no result ({self.status})")
        return load_exception(self.error, self.key)

    def __repr__(self) -> str:
        return f"<FutureState {self.key!r} {self.status}>"


def load_traceback(error: ErrorInfo) -> TracebackType | None:
    """The remote traceback as a real traceback object, when it could be carried over."""
    if error.traceback is None:
        return None
    try:
        return tblib.Traceback.from_dict(loads(error.traceback)).as_traceback()
    except Exception:
        return None


def load_exception(error: ErrorInfo, key: str) -> BaseException:
    """Rebuild a task's exception with its remote traceback and a note naming the task."""
    try:
        exc = loads(error.exception)
    except Exception as load_error:
        from ..protocol.failures import RemoteException

        exc = RemoteException("Exception", f"{error.text.strip()} (unloadable: {load_error!r})")
    if not isinstance(exc, BaseException):
        exc = TypeError(f"task {key!r} failed with a non-exception {exc!r}")
    tb = load_traceback(error)
    if tb is not None:
        exc = exc.with_traceback(tb)
    where = f" on worker {error.worker}" if error.worker else ""
    note = f"trident: raised by task {key!r}{where}"
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    return exc


def _seconds(timeout: float | str | None) -> float | None:
    """A timeout in seconds: dask takes numbers and text such as ``"10s"``."""
    return None if timeout is None else parse_duration(timeout)


#: `Future._user_key` before the wire key was first decoded
_UNDECODED: Any = object()


class Future:
    """A remotely running computation, as in `concurrent.futures` and dask.distributed.

    Create futures with `Client.submit`, `Client.map` or `Client.scatter`;
    ``Future(key, client)`` attaches to an existing key. In async code ``await future``
    returns the result; in blocking code use `result`. Methods that wait return a
    coroutine when the client is asynchronous.
    """

    __slots__ = ("__weakref__", "_client", "_key", "_released", "_state", "_user_key")

    #: dask treats futures in graphs as references to their keys (its future protocol)
    __dask_future__ = True
    #: where the pickler of task arguments finds the key as it travels
    _wire_key_attribute = "_key"

    def __init__(
        self,
        key: Any,
        client: Client | None = None,
        inform: bool = True,
        state: FutureState | None = None,
    ):
        from .client import default_client

        client = client if client is not None else default_client()
        #: the key as it travels (see `trident._keys`); `key` is the user's
        self._key = encode_key(key)
        self._user_key = key
        self._client = client
        self._state = client._core.acquire(self._key, inform=inform)
        self._released = False

    @classmethod
    def _adopt(cls, key: str, client: Client, state: FutureState) -> Future:
        """Wrap a state (of wire key `key`) whose reference the client already counted
        for us."""
        future = cls.__new__(cls)
        future._key = key
        future._user_key = _UNDECODED
        future._client = client
        future._state = state
        future._released = False
        return future

    @classmethod
    def _attach(cls, key: str, client: Client) -> Future:
        """A future of the wire key `key` (``Future(key)`` takes the user's key)."""
        future = cls.__new__(cls)
        future._key = key
        future._user_key = _UNDECODED
        future._client = client
        future._state = client._core.acquire(key, inform=True)
        future._released = False
        return future

    @property
    def key(self) -> Any:
        """The task's key as the user gave it, with its type (a string, or a dask key
        such as ``('x-abc', 0, 1)``)."""
        user = self._user_key
        if user is _UNDECODED:
            user = self._user_key = decode_key(self._key)
        return user

    def __del__(self) -> None:
        # Errors are impossible to report from here (interpreter shutdown, closed client).
        # No module globals (contextlib.suppress): at shutdown they may be None already.
        try:  # noqa: SIM105
            self.release()
        except Exception:
            pass

    def release(self) -> None:
        """Give up this future's hold on its key, as ``del future`` does (dask's
        `Future.release`): once no future of the key is left, the cluster may forget
        its result. Idempotent; the future must not be used afterwards. Never blocks."""
        if getattr(self, "_released", True):
            return  # already released, or never acquired (a failed constructor)
        self._released = True
        self._client._core.release(self._key)

    @property
    def client(self) -> Client:
        return self._client

    @property
    def status(self) -> str:
        """``pending``, ``finished``, ``error``, ``cancelled`` or ``lost``."""
        return self._state.status

    @property
    def type(self) -> str:
        """The type name of the result, once finished."""
        return self._state.type_name

    def done(self) -> bool:
        """True once the future has an outcome (result, error or cancellation)."""
        return self._state.status != PENDING

    def cancelled(self) -> bool:
        return self._state.status == CANCELLED

    def result(self, timeout: float | str | None = None) -> Any:
        """Wait for the task and return its value (raises the task's exception).

        Raises `TimeoutError` after `timeout` seconds (or text such as ``"10s"``),
        `CancelledError` if cancelled. Returns a coroutine for asynchronous clients.
        """
        timeout = _seconds(timeout)
        if self._client.asynchronous:
            return self._result_async(timeout)
        return self._client._result_blocking(self._state, timeout)

    # The async forms are methods of the future so that awaiting a temporary future
    # (``await client.submit(f)``) keeps it, and with it the key, alive until done.
    async def _result_async(self, timeout: float | None) -> Any:
        core = self._client._core
        if not self._client.asynchronous and not core.in_loop_thread:
            # Awaited in an event loop that is not the client's (an ``async def`` task
            # written for asyncio awaiting a future of the worker's client, which runs
            # in the worker's trio loop): a thread of that loop waits for it.
            return await anyio.to_thread.run_sync(
                self._client._result_blocking, self._state, timeout, abandon_on_cancel=True
            )
        with self._waiting():
            return await core.result_async(self._state, timeout)

    async def _exception_async(self, timeout: float | None) -> Any:
        with self._waiting():
            with anyio.fail_after(timeout):
                await self._state.wait()
            return self._exception_now()

    async def _traceback_async(self, timeout: float | None) -> Any:
        with self._waiting():
            with anyio.fail_after(timeout):
                await self._state.wait()
            return self._traceback_now()

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        """`Client._waiting` while the future is pending (a task waiting secedes)."""
        if self._state.status == PENDING:
            return self._client._waiting()
        return contextlib.nullcontext()

    def exception(self, timeout: float | str | None = None) -> Any:
        """Wait for the task; return its exception, or None if it succeeded."""
        timeout = _seconds(timeout)
        if self._client.asynchronous:
            return self._exception_async(timeout)
        self._client._wait_blocking(self._state, timeout)
        return self._exception_now()

    def _exception_now(self) -> BaseException | None:
        state = self._state
        if state.status == FINISHED:
            return None
        if state.status == CANCELLED:
            raise state.exception_object()
        return state.exception_object()

    def traceback(self, timeout: float | str | None = None) -> Any:
        """Wait for the task; return the traceback of its exception, or None."""
        timeout = _seconds(timeout)
        if self._client.asynchronous:
            return self._traceback_async(timeout)
        self._client._wait_blocking(self._state, timeout)
        return self._traceback_now()

    def _traceback_now(self) -> TracebackType | None:
        state = self._state
        if state.status == CANCELLED:
            raise state.exception_object()
        if state.error is None:
            return None
        return load_traceback(state.error)

    def cancel(self, force: bool = False, reason: str | None = None, msg: str | None = None) -> Any:
        """Cancel the task on the cluster (and everything that depends on it); `reason`
        (or dask's older name, `msg`) is what its `CancelledError` says."""
        return self._client.cancel([self], force=force, reason=reason, msg=msg)

    def retry(self) -> Any:
        """Run this future's task again if it failed (see `Client.retry`)."""
        return self._client.retry([self])

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        """Call ``fn(future)`` once the future is done (at once if it already is).

        Callbacks of blocking clients run in a thread owned by the client; those of
        asynchronous clients run in the client's event loop. Exceptions are logged.
        """
        self._client._core.add_done_callback(self, fn)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result_async(None).__await__()

    def __reduce__(self) -> tuple:
        return (Future, (self.key,))

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("trident.Future", self._key)

    def __repr__(self) -> str:
        state = self._state
        if state.status == FINISHED and state.type_name:
            return f"<Future: finished, type: {state.type_name}, key: {self.key}>"
        if state.status == ERROR and state.error is not None:
            name = (
                state.error.text.strip().splitlines()[-1].split(":")[0] if state.error.text else ""
            )
            return f"<Future: error, type: {name}, key: {self.key}>"
        return f"<Future: {state.status}, key: {self.key}>"

    def _repr_html_(self) -> str:
        """The future as notebooks show it: status, result type and key."""
        state = self._state
        rows = [("Status", html.escape(state.status))]
        if state.status == FINISHED and state.type_name:
            rows.append(("Type", html.escape(state.type_name)))
        rows.append(("Key", html.escape(self.key)))
        return html_table("Future", rows)


register_future_type(Future)


publish(globals())
