"""`ClientCore`: the client's engine, written against anyio (trio and asyncio).

It owns the connection to the scheduler and the pool of connections to workers, keeps
the `FutureState` of every key the client holds, and counts the `Future` objects per
key. `serve` runs in the client's event loop (the caller's own loop for asynchronous
clients, the `LoopThread` for blocking ones).

Thread safety: `add_tasks`, `acquire`, `release`, `enqueue` and `close` may be called
from any thread; they append to an ordered outgoing queue under `lock` and schedule a
flush in the loop. Everything else runs in the loop. The outgoing queue keeps submits
and releases in the order the user made them, which the scheduler relies on.

Losing the scheduler: when the connection breaks (or the scheduler stays silent for
`scheduler_timeout` seconds) the client reconnects with growing pauses for up to
`reconnect_timeout` seconds, meanwhile queueing what the user submits. Back, it resumes
under the same client id (`ResumeClient`): futures keep waiting, and those whose keys
the scheduler no longer knows fail with `SchedulerLostError`. Requests that were
waiting for a reply when the connection broke fail with `SchedulerLostError`. If it
cannot reconnect in time, every pending future fails that way and the client closes.
Opening, reconnecting and resuming are `reconnection.Reconnection`'s job; moving data
straight to and from workers (gather, scatter, worker logs) is `transfer`'s; applying
what the scheduler says about keys to their futures is `key_updates.KeyUpdates`'.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
import trio

from .._exceptions import SchedulerLostError
from ..comm.batched import BatchedSender
from ..comm.connection import Connection, ConnectionClosed
from ..comm.liveness import RECONNECT_TIMEOUT, SCHEDULER_TIMEOUT, SilenceWatch
from ..comm.rpc import PeerPool
from ..comm.streams import StreamClosed
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.failures import error_info_for
from ..protocol.serialize import Serialized, is_kept_function, loads
from . import transfer
from .actor_calls import ActorCalls
from .callbacks import DoneCallbacks
from .context import loading_for
from .future import CANCELLED, FINISHED, LOST, PENDING, FutureState
from .key_updates import KeyUpdates
from .outgoing import batch_messages, queue_releases
from .output import OutputPrinter
from .reconnection import Reconnection
from .requests import PendingRequest, SchedulerRequests

if TYPE_CHECKING:
    from .client import Client
    from .future import Future

logger = logging.getLogger("trident.client")

#: Seconds between the client's heartbeats to the scheduler.
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT = m.Heartbeat()


class ClientCore:
    """Connection, futures and bookkeeping of one client.

    `timeout` bounds each attempt to connect; `heartbeat_interval` is how often the
    client tells the scheduler it is alive; `scheduler_timeout` how long a silent
    scheduler is tolerated and `reconnect_timeout` how long a lost one is tried again.
    """

    def __init__(
        self,
        address: str,
        *,
        name: str,
        token: str | None,
        timeout: float,
        callbacks_in_thread: bool,
        ssl_context: ssl.SSLContext | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        scheduler_timeout: float = SCHEDULER_TIMEOUT,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ):
        self.address = address
        self.heartbeat_interval = heartbeat_interval
        self.scheduler_timeout = scheduler_timeout
        self.reconnect_timeout = reconnect_timeout
        self.client_id = f"client-{uuid.uuid4().hex}"
        self.name = name
        self.timeout = timeout
        self.status = "newly-created"
        self.scheduler_id = ""
        self.lock = threading.Lock()
        self.futures: dict[str, FutureState] = {}
        self.workers: dict[str, m.WorkerInfo] = {}
        #: ``host:port`` of the scheduler's dashboard, once the scheduler said so
        self.dashboard_address: str | None = None
        #: shows forwarded task output (`set_forwarding`)
        self.output = OutputPrinter()
        self.stopped = threading.Event()
        self._token = token
        self._ssl_context = ssl_context
        self._refcount: dict[str, int] = {}
        self._released: deque[str] = deque()
        self._outgoing: list[Any] = []
        self._functions_sent: set[str] = set()
        self._pending_functions: dict[str, Serialized] = {}
        self._reconnection = Reconnection(self)
        self._flush_scheduled = False
        self._call_soon: Callable[..., Any] | None = None
        self._loop_thread: threading.Thread | None = None
        self._sender: BatchedSender | None = None
        self._peers: PeerPool | None = None
        self._closing: anyio.Event | None = None
        self._workers_changed: anyio.Event | None = None
        #: requests to the scheduler waiting for their replies
        self.requests = SchedulerRequests(self.enqueue, self.check_running, self.client_id)
        #: where `Future.add_done_callback` callbacks run
        self.callbacks = DoneCallbacks(in_thread=callbacks_in_thread)
        self._task_group: Any = None
        #: the facade this core serves (results unpickle in its name)
        self.client: Client | None = None
        self.actor_calls = ActorCalls(self)
        #: applies what the scheduler says about keys to their futures
        self.key_updates = KeyUpdates(
            self.futures, self.transition, self._reconnection, self.actor_calls.keys_lost
        )
        #: how loudly losing the scheduler is logged (a worker's own client stays quiet:
        #: its worker reports the loss)
        self.loss_log_level = logging.WARNING
        self._handlers: dict[type, Callable[[Any], None]] = {
            **self.key_updates.handlers(),
            m.WorkersChanged: self._on_workers_changed,
            m.Reply: self.requests.on_reply,
            m.RunResult: self.requests.on_answer,
            m.RunResults: self.requests.on_answer,
            m.PluginResults: self.requests.on_answer,
            m.SchedulerServices: self._on_services,
            m.TaskOutput: self._on_task_output,
            m.Heartbeat: _ignore,
            m.ClientWelcome: self._on_welcome,
            m.ClientResumed: self._reconnection.on_resumed,
        }

    # --- lifecycle --------------------------------------------------------------------

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, register and serve until `close`, reconnecting when the scheduler is
        lost (see the module docstring).

        Reports readiness through `task_status`; raises `OSError`, `TimeoutError` or
        `AuthenticationError` if the scheduler cannot be reached or refuses us at first.
        """
        self._bind_loop()
        self._closing = anyio.Event()
        self._workers_changed = anyio.Event()
        connection: Connection | None = None
        try:
            connection = await self._reconnection.open_first(self.timeout)
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                self._peers = PeerPool(
                    tg,
                    role="client",
                    name=self.name,
                    token=self._token,
                    ssl_context=self._ssl_context,
                )
                tg.start_soon(self._send_heartbeats)
                self.status = "running"
                task_status.started()
                while connection is not None and await self._session(connection):
                    with anyio.CancelScope(shield=True):
                        await connection.aclose()
                    connection = await self._reconnection.reconnect()
                self._peers.close()
                tg.cancel_scope.cancel()
        finally:
            self.status = "closed"
            self._sender = None
            self._fail_pending("the client is closed")
            self.actor_calls.fail_all(RuntimeError("the client is closed"))
            if connection is not None:
                with anyio.CancelScope(shield=True):
                    await connection.aclose()
            self.callbacks.shutdown()
            self.stopped.set()

    async def _session(self, connection: Connection) -> bool:
        """Serve one connection until the client closes (False) or the connection is
        lost: broken, or the scheduler silent for `scheduler_timeout` seconds (True)."""
        assert self._closing is not None
        sender = self._sender = BatchedSender(connection)
        watch = SilenceWatch(self.scheduler_timeout)
        lost = True
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender.run)
            tg.start_soon(self._receive_loop, connection, watch, tg.cancel_scope)
            tg.start_soon(self._watch_silence, watch, tg.cancel_scope)
            self._flush()
            await self._closing.wait()
            lost = False
            self.status = "closing"
            sender.send(m.Goodbye("client closing"))
            with anyio.move_on_after(2):
                await sender.flush()
            tg.cancel_scope.cancel()
        self._sender = None
        if lost:
            unsent = [msg for msg in sender.take_unsent() if type(msg) is not m.Heartbeat]
            with self.lock:
                self._outgoing[:0] = unsent
            self._connection_lost()
        return lost

    async def _watch_silence(self, watch: SilenceWatch, session: anyio.CancelScope) -> None:
        await watch.wait()
        logger.log(
            self.loss_log_level,
            "client %s: the scheduler sent nothing for %g s; reconnecting",
            self.client_id,
            watch.timeout,
        )
        session.cancel()

    async def _send_heartbeats(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_interval)
            sender = self._sender
            if sender is not None:
                sender.send(HEARTBEAT)

    def _connection_lost(self) -> None:
        """The connection broke: requests waiting for replies fail; futures wait on."""
        self.status = "reconnecting"
        self.requests.fail_all()

    def _bind_loop(self) -> None:
        self._loop_thread = threading.current_thread()
        if sniffio.current_async_library() == "trio":
            self._call_soon = trio.lowlevel.current_trio_token().run_sync_soon
        else:
            self._call_soon = asyncio.get_running_loop().call_soon_threadsafe

    def close(self) -> None:
        """Ask `serve` to finish; safe from any thread, and idempotent."""
        if self.status in ("closing", "closed"):
            return
        if self._closing is None or self._call_soon is None:
            self.status = "closed"
            self.stopped.set()
            return
        self.status = "closing"
        try:
            self._call_soon(self._closing.set)
        except (trio.RunFinishedError, RuntimeError):
            self.stopped.set()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._loop_thread

    @property
    def peers(self) -> PeerPool:
        """Connections to workers (available while serving)."""
        assert self._peers is not None
        return self._peers

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the client's loop, in FIFO order; safe from any thread."""
        if self._call_soon is None:
            raise RuntimeError("the client is not running")
        self._call_soon(fn, *args)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start a background task owned by the client (call from the loop)."""
        self._task_group.start_soon(fn, *args)

    def load(self, payload: Serialized, *, localize: bool = True) -> Any:
        """Unpickle a result for this client; actor handles inside bind to it.

        With `localize`, a value that knows how it appears to user code (an actor's
        location becomes an `Actor` handle) is converted.
        """
        context = loading_for(self.client) if self.client is not None else contextlib.nullcontext()
        with context:
            value = loads(payload)
            hook = getattr(type(value), "__trident_local__", None) if localize else None
            if hook is not None:
                value = hook(value)
        return value

    def _handle_messages(self, messages: list[Any]) -> None:
        handlers = self._handlers
        for msg in messages:
            handler = handlers.get(type(msg))
            if handler is None:
                raise ProtocolError(f"the scheduler sent an unexpected {type(msg).__name__}")
            handler(msg)

    async def _receive_loop(
        self, connection: Connection, watch: SilenceWatch, session: anyio.CancelScope
    ) -> None:
        try:
            while True:
                messages = await connection.receive()
                watch.heard()
                self._handle_messages(messages)
                del messages  # not kept while waiting for the next packet
        except (ConnectionClosed, StreamClosed) as exc:
            if self.status == "running":
                logger.log(
                    self.loss_log_level, "client %s lost the scheduler: %s", self.client_id, exc
                )
        except ProtocolError as exc:
            logger.error("client %s: bad message from the scheduler: %s", self.client_id, exc)
        session.cancel()

    def _fail_pending(self, reason: str, *, lost: bool = False) -> None:
        error = error_info_for(SchedulerLostError(reason))
        for fs in list(self.futures.values()):
            if fs.status == PENDING:
                if lost:
                    self.transition(fs, fs.set_lost, error)
                else:
                    self.transition(fs, fs.set_cancelled, reason)
        self.requests.wake_all()

    def _on_welcome(self, msg: m.ClientWelcome) -> None:
        self.scheduler_id = msg.scheduler_id
        self.workers = {info.address: info for info in msg.workers}
        if self._workers_changed is not None:
            self._workers_changed.set()
            self._workers_changed = anyio.Event()

    # --- outgoing (any thread) -------------------------------------------------------

    def add_tasks(
        self, specs: Iterable[m.TaskSpec], functions: dict[str, Serialized]
    ) -> list[FutureState]:
        """Queue tasks for the scheduler; return their states, one reference each."""
        states = []
        with self.lock:
            large: dict[str, Serialized] = {}
            for token, payload in functions.items():
                if not is_kept_function(payload):
                    # Sent with these tasks, kept by the scheduler while tasks use it.
                    large[token] = payload
                    self._pending_functions[token] = payload
                elif token not in self._functions_sent:
                    self._functions_sent.add(token)
                    self._pending_functions[token] = payload
            futures = self.futures
            refcount = self._refcount
            outgoing = self._outgoing
            for spec in specs:
                key = spec.key
                fs = futures.get(key)
                if fs is None:
                    fs = futures[key] = FutureState(key)
                    fs.spec = spec
                    fs.function_payload = large.get(spec.function)
                    refcount[key] = 1
                    outgoing.append(spec)
                else:
                    refcount[key] += 1
                    if fs.status in (CANCELLED, LOST):
                        fs.reset()
                        fs.spec = spec
                        fs.function_payload = large.get(spec.function)
                        outgoing.append(spec)
                states.append(fs)
        self._schedule_flush()
        return states

    def add_finished(
        self,
        keys: list[str],
        type_names: dict[str, str],
        nbytes: dict[str, int],
        who_has: dict[str, list[str]],
    ) -> list[FutureState]:
        """Register data this client stored on workers itself (scatter)."""
        states = []
        with self.lock:
            for key in keys:
                fs = self.futures.get(key)
                if fs is None:
                    fs = self.futures[key] = FutureState(key)
                    self._refcount[key] = 1
                else:
                    self._refcount[key] += 1
                fs.set_finished(type_names[key], nbytes[key], None)
                states.append(fs)
            self._outgoing.append(m.RegisterScattered(who_has, nbytes, type_names))
        for fs in states:
            self._wake(fs)
        self._schedule_flush()
        return states

    def acquire(self, key: str, *, inform: bool) -> FutureState:
        """One more `Future` object for `key`; asks the scheduler about unknown keys."""
        with self.lock:
            fs = self.futures.get(key)
            if fs is None:
                fs = self.futures[key] = FutureState(key)
                self._refcount[key] = 1
                if inform:
                    self._outgoing.append(m.WantKeys([key]))
            else:
                self._refcount[key] += 1
        self._schedule_flush()
        return fs

    def release(self, key: str) -> None:
        """One `Future` object of `key` is gone (called from `Future.__del__`)."""
        self._released.append(key)
        self._schedule_flush()

    def enqueue(self, message: Any) -> None:
        """Send `message` to the scheduler, in order with submits and releases."""
        with self.lock:
            self._outgoing.append(message)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or self._call_soon is None or self.status == "closed":
            return
        self._flush_scheduled = True
        try:
            self._call_soon(self._flush)
        except (trio.RunFinishedError, RuntimeError):
            self._flush_scheduled = False

    def _flush(self) -> None:
        """Turn the outgoing queue into messages (runs in the loop)."""
        self._flush_scheduled = False
        sender = self._sender
        if sender is None:
            return
        try:
            with self.lock:
                queue_releases(self._released, self._refcount, self.futures, self._outgoing)
                outgoing, self._outgoing = self._outgoing, []
                functions, self._pending_functions = self._pending_functions, {}
                if functions:
                    self._reconnection.keep_functions(functions)
            if outgoing or functions:
                sender.send_now(batch_messages(outgoing, functions))
        except Exception:
            logger.exception("client %s failed to send its queue", self.client_id)

    # --- incoming (loop) -------------------------------------------------------------

    def transition(self, fs: FutureState, apply: Callable[..., None], *args: Any) -> None:
        with self.lock:
            apply(*args)
            events, listeners = fs.take_waiters()
        for event in events:
            event.set()
        for listener in listeners:
            try:
                listener(fs)
            except Exception:
                logger.exception("future listener failed")

    def _wake(self, fs: FutureState) -> None:
        with self.lock:
            events, listeners = fs.take_waiters()
        for event in events:
            event.set()
        for listener in listeners:
            listener(fs)

    def _on_workers_changed(self, msg: m.WorkersChanged) -> None:
        for info in msg.added:
            self.workers[info.address] = info
        for address in msg.removed:
            self.workers.pop(address, None)
        assert self._workers_changed is not None
        self._workers_changed.set()
        self._workers_changed = anyio.Event()

    def _on_services(self, msg: m.SchedulerServices) -> None:
        self.dashboard_address = msg.dashboard

    def _on_task_output(self, msg: m.TaskOutput) -> None:
        self.output.show_message(msg, self.workers, self.client_id)

    def set_forwarding(self, logger_name: str | None, level: int, *, enabled: bool) -> None:
        """Start or stop forwarding task output; safe from any thread.

        Printed output is forwarded while any logger is forwarded; log records when
        they come from a forwarded logger (`logger_name` and its children; None is the
        root, meaning all) at `level` or above.
        """
        with self.lock:
            now_on = self.output.forward(logger_name, level, enabled=enabled)
        if now_on is not None:
            self.enqueue(m.ForwardOutput(now_on))

    def on_message(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Handle scheduler messages of type `kind` with `handler` (called in the loop)."""
        self._handlers[kind] = handler

    # --- requests and data (loop) ------------------------------------------------------

    async def request(self, build: Callable[[int], Any]) -> Any:
        """Send ``build(request_id)`` to the scheduler and return the reply's value
        (see `SchedulerRequests.request`)."""
        return await self.requests.request(build)

    def start_request(self, build: Callable[[int], Any]) -> PendingRequest:
        """`SchedulerRequests.start`: send without waiting (call in the loop)."""
        return self.requests.start(build)

    def finish_request(self, pending: PendingRequest) -> Any:
        """`SchedulerRequests.finish`: the value of an answered request."""
        return self.requests.finish(pending)

    def abandon_request(self, pending: PendingRequest, on_reply: Callable[[m.Reply], None]) -> None:
        """`SchedulerRequests.abandon`: nobody waits for `pending` any more."""
        self.requests.abandon(pending, on_reply)

    def check_running(self) -> None:
        """Raise `RuntimeError` unless the client is running (or reconnecting: requests
        are then sent once it is back)."""
        if self.status not in ("running", "reconnecting"):
            raise RuntimeError(f"the client is {self.status}")

    async def restart(self, timeout: float | None, wait_for_workers: bool) -> None:
        """Ask the scheduler to restart the cluster; return once it answered.

        The scheduler cancels every future first (`KeysCancelled` arrives before the
        answer). Raises `TimeoutError` after `timeout` seconds.
        """
        with anyio.fail_after(timeout):
            await self.request(lambda rid: m.RestartRequest(rid, wait_for_workers))

    async def wait_for_workers(self, n: int, timeout: float | None) -> None:
        with anyio.fail_after(timeout):
            while len(self.workers) < n:
                assert self._workers_changed is not None
                await self._workers_changed.wait()

    async def cancel(self, keys: list[str], force: bool, reason: str | None) -> None:
        self.cancel_now(keys, force, reason)
        await anyio.lowlevel.checkpoint()

    def cancel_now(self, keys: list[str], force: bool, reason: str | None) -> None:
        """Mark `keys` cancelled and tell the scheduler (call from the loop)."""
        for key in keys:
            fs = self.futures.get(key)
            if fs is not None and fs.status != CANCELLED:
                self.transition(fs, fs.set_cancelled, reason or "cancelled by the client")
        self.enqueue(m.CancelKeys(keys, force))

    # --- waiting helpers (loop) ----------------------------------------------------------

    async def result_async(self, fs: FutureState, timeout: float | None) -> Any:
        """Wait for `fs` and return its value, fetched from a worker if need be.

        Raises `TimeoutError` after `timeout` seconds, and the future's exception (or
        `CancelledError`) if it did not finish. A checkpoint.
        """
        with anyio.fail_after(timeout):
            await fs.wait()
        if fs.status == FINISHED and fs.payload is not None:
            return self.load(fs.payload)
        return (await transfer.gather_values(self, [fs]))[fs.key]

    def add_listener(self, fs: FutureState, listener: Callable[[FutureState], None]) -> bool:
        """Register `listener` for the next transition; False if `fs` is already done."""
        with self.lock:
            if fs.done():
                return False
            fs.add_listener(listener)
            return True

    def remove_listener(self, fs: FutureState, listener: Callable[[FutureState], None]) -> None:
        with self.lock:
            fs.remove_listener(listener)

    def add_done_callback(self, future: Future, fn: Callable[[Future], Any]) -> None:
        """Call ``fn(future)`` once `future` is done (see `DoneCallbacks`); safe from any
        thread."""
        listener = _DoneListener(self.callbacks, fn, future)
        if not self.add_listener(future._state, listener):
            if self.in_loop_thread or self._call_soon is None:
                listener.dispatch()
            else:
                self._call_soon(listener.dispatch)


class _DoneListener:
    """Runs one done callback once its future's state is done.

    An object rather than a closure that removes itself by name: such a closure refers
    to itself through its own cell, a reference cycle that would keep the future (and
    its result on the workers) alive until the cyclic garbage collector runs, which in
    a process running a cluster is rarely (see `trident._gc`).
    """

    __slots__ = ("_callbacks", "_fn", "_future")

    def __init__(self, callbacks: DoneCallbacks, fn: Callable[[Future], Any], future: Future):
        self._callbacks = callbacks
        self._fn = fn
        self._future = future

    def dispatch(self) -> None:
        self._callbacks.run(self._fn, self._future)

    def __call__(self, state: FutureState) -> None:
        if state.done():
            state.remove_listener(self)
            self.dispatch()


def _ignore(msg: Any) -> None:
    """Handler of messages that only show the scheduler is alive."""
