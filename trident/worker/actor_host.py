"""`ActorHost`: the worker's side of actors.

Each hosted actor has its own thread, which runs its sync methods (and attribute reads)
one at a time, in the order the calls arrived. ``async def`` methods run as tasks in the
worker's trio loop, at most `max_concurrency` at a time per actor, each in its own
cancel scope; an actor written for asyncio (`asyncio_actors.uses_asyncio`) has its
coroutines run in an asyncio loop of its own instead, in a second thread, still under
that limit and that cancel scope. Because every actor has its own thread, an actor that
waits for another actor, or tasks that wait for an actor, cannot starve it.

Replies leave through the connection the call came from. A call to an actor that is
not (or no longer) here is answered ``lost``.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._actor_location import ActorLocation, public_attributes, public_methods
from ..protocol import messages as m
from ..protocol.failures import error_info
from ..protocol.serialize import dumps, loads_task_args
from .asyncio_actors import AsyncioActorLoop, uses_asyncio
from .context import task_context
from .executor import SHUTDOWN_GRACE_SECONDS, Mailbox, join_threads

if TYPE_CHECKING:
    from .actor import Worker

logger = logging.getLogger("trident.actors")


class ReplySink(Protocol):
    """Where the replies of one connection go (its `BatchedSender`)."""

    def send(self, message: m.ActorReply) -> None: ...

    def flush_now(self) -> None: ...


_STOP = object()


class _Call:
    """One method call (or attribute read) waiting for, or in, execution."""

    __slots__ = ("cancelled", "message", "origin", "reply", "scope")

    def __init__(self, origin: int, message: m.ActorCall, reply: ReplySink):
        self.origin = origin
        self.message = message
        self.reply = reply
        self.cancelled = False
        self.scope: trio.CancelScope | None = None


class HostedActor:
    """An actor instance with its thread, its call queue and its async-method limiter."""

    def __init__(self, location: ActorLocation, instance: Any, max_concurrency: int):
        self.location = location
        self.instance = instance
        self.closed = False
        self.calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.limiter = trio.CapacityLimiter(max(1, max_concurrency))
        self.thread: threading.Thread | None = None
        #: where the coroutine methods of an asyncio actor run (None: the trio loop)
        self.asyncio_loop: AsyncioActorLoop | None = None


class ActorHost:
    """Every actor hosted by one worker."""

    def __init__(self, worker: Worker):
        self._worker = worker
        self._actors: dict[str, HostedActor] = {}
        self._calls: dict[tuple[int, int], tuple[HostedActor, _Call]] = {}
        self._mailbox: Mailbox[tuple[_Call, m.ActorReply]] = Mailbox(self._deliver)
        self._nursery: trio.Nursery | None = None
        self._threads: list[threading.Thread] = []

    def __contains__(self, key: str) -> bool:
        return key in self._actors

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the actors' threads and async calls; on cancellation stop them all."""
        self._mailbox.bind()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            for key in list(self._actors):
                self.forget(key)
            with trio.CancelScope(shield=True):
                await join_threads(self._threads, SHUTDOWN_GRACE_SECONDS)

    def host(
        self, key: str, instance: Any, options: m.ActorOptions, restarts: int
    ) -> ActorLocation:
        """Start hosting `instance` under `key`; return its location."""
        methods, async_methods = public_methods(type(instance))
        location = ActorLocation(
            key,
            self._worker.address,
            type(instance).__qualname__,
            methods,
            async_methods,
            options.max_restarts,
            restarts,
            public_attributes(instance, methods),
        )
        hosted = HostedActor(location, instance, options.max_concurrency)
        thread = threading.Thread(
            target=self._thread_main, args=(hosted,), name=f"trident-actor-{key}", daemon=True
        )
        hosted.thread = thread
        self._actors[key] = hosted
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        if async_methods and uses_asyncio(instance):
            hosted.asyncio_loop = AsyncioActorLoop(f"trident-actor-asyncio-{key}")
            self._threads.append(hosted.asyncio_loop.start())
        return location

    def forget(self, key: str) -> None:
        """Stop hosting `key`: queued calls are answered lost, async calls cancelled."""
        hosted = self._actors.pop(key, None)
        if hosted is None:
            return
        hosted.closed = True
        hosted.calls.put(_STOP)
        if hosted.asyncio_loop is not None:
            hosted.asyncio_loop.close()
        for owner, call in list(self._calls.values()):
            if owner is hosted and call.scope is not None:
                call.scope.cancel()

    def call(self, origin: int, message: m.ActorCall, reply: ReplySink) -> None:
        """Run one call that arrived on connection `origin`; its answer goes to `reply`."""
        hosted = self._actors.get(message.key)
        if hosted is None or hosted.closed:
            reply.send(m.ActorReply(message.request_id, None, None, True))
            return
        call = _Call(origin, message, reply)
        self._calls[(origin, message.request_id)] = (hosted, call)
        if not message.attribute and message.method in hosted.location.async_methods:
            assert self._nursery is not None
            self._nursery.start_soon(self._run_async, hosted, call)
        else:
            hosted.calls.put(call)

    def cancel(self, origin: int, request_id: int) -> None:
        """The caller cancelled this call: skip it if queued, interrupt it if async."""
        entry = self._calls.pop((origin, request_id), None)
        if entry is None:
            return
        _, call = entry
        call.cancelled = True
        if call.scope is not None:
            call.scope.cancel()

    def forget_origin(self, origin: int) -> None:
        """The connection `origin` closed: nobody is left to answer, so cancel its calls."""
        for conn, request_id in [k for k in self._calls if k[0] == origin]:
            self.cancel(conn, request_id)

    # --- running calls ---------------------------------------------------------------

    def _invoke(self, hosted: HostedActor, message: m.ActorCall) -> Any:
        if message.attribute:
            return getattr(hosted.instance, message.method)
        if message.method not in hosted.location.methods:
            raise AttributeError(
                f"actor {hosted.location.type_name} has no method {message.method!r}"
            )
        args, kwargs = loads_task_args(message.args, {})
        return getattr(hosted.instance, message.method)(*args, **kwargs)

    def _thread_main(self, hosted: HostedActor) -> None:
        post = self._mailbox.post
        while True:
            call = hosted.calls.get()
            if call is _STOP:
                break
            message = call.message
            if hosted.closed:
                post((call, m.ActorReply(message.request_id, None, None, True)))
                continue
            if call.cancelled:
                continue
            with task_context(self._worker, hosted.location.key):
                post((call, self._outcome(hosted, message)))
        while True:  # answer what was queued behind the stop
            try:
                call = hosted.calls.get_nowait()
            except queue.Empty:
                return
            if call is not _STOP:
                post((call, m.ActorReply(call.message.request_id, None, None, True)))

    def _outcome(self, hosted: HostedActor, message: m.ActorCall) -> m.ActorReply:
        try:
            value = self._invoke(hosted, message)
            return m.ActorReply(message.request_id, dumps(value), None, False)
        except BaseException as exc:
            return m.ActorReply(
                message.request_id, None, error_info(exc, self._worker.address), False
            )

    async def _run_async(self, hosted: HostedActor, call: _Call) -> None:
        message = call.message
        reply: m.ActorReply | None = None
        async with hosted.limiter:
            with trio.CancelScope() as scope, task_context(self._worker, hosted.location.key):
                call.scope = scope
                if call.cancelled or hosted.closed:
                    scope.cancel()
                try:
                    args, kwargs = loads_task_args(message.args, {})
                    method = functools.partial(
                        getattr(hosted.instance, message.method), *args, **kwargs
                    )
                    if hosted.asyncio_loop is None:
                        value = await method()
                    else:
                        key = hosted.location.key
                        value = await hosted.asyncio_loop.run(
                            method, lambda: task_context(self._worker, key)
                        )
                    reply = m.ActorReply(message.request_id, dumps(value), None, False)
                except Exception as exc:
                    reply = m.ActorReply(
                        message.request_id, None, error_info(exc, self._worker.address), False
                    )
        if reply is None:  # cancelled
            if hosted.closed and not call.cancelled:
                reply = m.ActorReply(message.request_id, None, None, True)
            else:
                self._calls.pop((call.origin, message.request_id), None)
                return
        self._deliver([(call, reply)])

    def _deliver(self, batch: list[tuple[_Call, m.ActorReply]]) -> None:
        sinks: dict[int, ReplySink] = {}
        for call, reply in batch:
            self._calls.pop((call.origin, reply.request_id), None)
            if not call.cancelled:
                call.reply.send(reply)
                sinks[id(call.reply)] = call.reply
        for sink in sinks.values():  # one write per connection for the whole batch
            sink.flush_now()
