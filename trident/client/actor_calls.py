"""`ActorCalls`: a client's outgoing actor calls, sent straight to the hosting worker.

Calls of one client to one actor leave in the order they were made: each call is
handed to the event loop with a FIFO callback, which sends it at once when the actor's
location is known and its connection open, and otherwise appends it to the actor's
backlog. One pump task per actor then waits for the actor (being created or restarted),
connects, and sends the backlog in order.

A call in flight when its worker dies fails with `ActorRestarted` if the actor has
restarts left and `ActorDied` otherwise; later calls wait for the restarted actor, or
fail at once with `ActorDied` when there is none.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from .._actor_location import ActorLocation
from .._exceptions import ActorDied, ActorRestarted
from ..comm.rpc import PeerUnavailable
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from ..protocol.serialize import Serialized, dumps_task_args
from . import transfer
from .future import FINISHED, PENDING, Future, FutureState

if TYPE_CHECKING:
    from .actor_handle import Actor
    from .core import ClientCore

logger = logging.getLogger("trident.actors")


class _Call:
    __slots__ = ("attribute", "holder", "method", "payload", "request_id", "state")

    def __init__(
        self, method: str, payload: Serialized, attribute: bool, state: FutureState, holder: Future
    ):
        self.method = method
        self.payload = payload
        self.attribute = attribute
        self.state = state
        #: the actor's future: an unfinished call keeps its actor alive
        self.holder: Future | None = holder
        self.request_id: int | None = None


class _Channel:
    """The calls of this client to one actor (it holds no reference to the actor)."""

    __slots__ = ("actor_state", "backlog", "failed_restarts", "key", "location", "pumping", "sent")

    def __init__(self, actor: Actor):
        self.key = actor.key
        self.actor_state = actor._future._state
        self.location: ActorLocation | None = actor._location
        self.backlog: list[_Call] = []
        self.pumping = False
        self.failed_restarts: int | None = None
        self.sent: dict[int, _Call] = {}


class ActorCalls:
    """Every actor call of one client core."""

    def __init__(self, core: ClientCore):
        self._core = core
        self._channels: dict[str, _Channel] = {}
        self._calls: dict[int, tuple[_Channel, _Call]] = {}  # id(state) -> call
        self._counter = 0

    # --- any thread -----------------------------------------------------------------

    def call(
        self, actor: Actor, method: str, args: tuple, kwargs: dict[str, Any], attribute: bool
    ) -> FutureState:
        """Start a call; return the state its `ActorFuture` wraps. Safe from any thread."""
        payload, dependencies = dumps_task_args(args, kwargs)
        if dependencies:
            raise TypeError(
                "futures cannot be passed to actor methods; pass their results "
                f"(await them or call .result()) instead: {dependencies}"
            )
        self._core.check_running()
        self._counter += 1
        state = FutureState(f"{actor.key}.{method}#{self._counter}")
        call = _Call(method, payload, attribute, state, actor._future)
        self._core.call_soon(self._start, actor, call)
        return state

    async def cancel(self, state: FutureState) -> None:
        """Cancel the call behind `state` (runs in the client's loop)."""
        self._cancel(state)
        await anyio.lowlevel.checkpoint()

    # --- the event loop ------------------------------------------------------------

    def _start(self, actor: Actor, call: _Call) -> None:
        channel = self._channels.get(actor.key)
        if channel is None or channel.actor_state is not actor._future._state:
            self._forget_released_actors()
            channel = self._channels[actor.key] = _Channel(actor)
        self._calls[id(call.state)] = (channel, call)
        if channel.backlog or not self._send(channel, call):
            channel.backlog.append(call)
            self._pump(channel)

    def _send(self, channel: _Channel, call: _Call) -> bool:
        location = channel.location
        if location is None or channel.failed_restarts is not None:
            return False
        peers = self._core.peers

        def on_reply(reply: Any) -> None:
            self._on_reply(channel, call, location, reply)

        request_id = peers.try_send(
            location.address,
            lambda rid: m.ActorCall(rid, location.key, call.method, call.payload, call.attribute),
            on_reply,
        )
        if request_id is None:
            return False
        call.request_id = request_id
        channel.sent[request_id] = call
        return True

    def _forget_released_actors(self) -> None:
        futures = self._core.futures
        for key, channel in list(self._channels.items()):
            if (
                futures.get(key) is not channel.actor_state
                and not channel.backlog
                and not channel.sent
            ):
                del self._channels[key]

    def _on_reply(
        self, channel: _Channel, call: _Call, location: ActorLocation, reply: Any
    ) -> None:
        if call.request_id is not None:
            channel.sent.pop(call.request_id, None)
        call.holder = None
        state = call.state
        self._calls.pop(id(state), None)
        if state.status != PENDING:
            return  # cancelled meanwhile
        if isinstance(reply, PeerUnavailable) or (isinstance(reply, m.ActorReply) and reply.lost):
            self._location_failed(channel, location)
            if location.restarts < location.max_restarts:
                error: Exception = ActorRestarted(
                    f"the worker of actor {location.key!r} died during this call of "
                    f"{call.method!r}; the actor is being restarted"
                )
            else:
                error = ActorDied(f"actor {location.key!r} is gone (its worker died)")
            self._core.transition(state, state.set_error, error_info_for(error))
        elif reply.error is not None:
            self._core.transition(state, state.set_error, reply.error)
        else:
            value = reply.value
            self._core.transition(
                state, state.set_finished, "", value.nbytes if value else 0, value
            )

    def keys_lost(self, keys: list[str]) -> None:
        """The scheduler reported these keys lost: calls to those actors wait for their
        restarted instance instead of going to the old location (its worker left)."""
        for key in keys:
            channel = self._channels.get(key)
            if channel is not None and channel.location is not None:
                self._location_failed(channel, channel.location)

    def _location_failed(self, channel: _Channel, location: ActorLocation) -> None:
        if channel.location is location:
            channel.failed_restarts = location.restarts

    def _pump(self, channel: _Channel) -> None:
        if not channel.pumping:
            channel.pumping = True
            self._core.spawn(self._run_pump, channel)

    async def _run_pump(self, channel: _Channel) -> None:
        """Wait until the actor can be reached, then send the backlog in order."""
        delay = 0.01
        try:
            while channel.backlog:
                try:
                    location = await self._resolve(channel)
                    await self._core.peers.connect(location.address)
                except ActorDied as exc:
                    self._fail_backlog(channel, exc)
                    return
                except PeerUnavailable:
                    channel.failed_restarts = (
                        channel.location.restarts if channel.location is not None else -1
                    )
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                while channel.backlog:
                    call = channel.backlog[0]
                    if call.state.status != PENDING:
                        channel.backlog.pop(0)
                        continue
                    if not self._send(channel, call):
                        break
                    channel.backlog.pop(0)
        finally:
            channel.pumping = False

    async def _resolve(self, channel: _Channel) -> ActorLocation:
        """The actor's current location, newer than the last one that failed."""
        state = channel.actor_state
        delay = 0.005
        while True:
            if state.status == PENDING:
                await state.wait()
                continue
            if state.status != FINISHED:
                reason = state.exception_object()
                if isinstance(reason, ActorDied):
                    raise reason
                raise ActorDied(f"actor {channel.key!r} is gone: {reason}") from reason
            if channel.failed_restarts is None and channel.location is not None:
                return channel.location
            values = await transfer.gather_values(self._core, [state], localize=False)
            location = values[state.key]
            assert isinstance(location, ActorLocation)
            if channel.failed_restarts is None or location.restarts > channel.failed_restarts:
                channel.location = location
                channel.failed_restarts = None
                return location
            await anyio.sleep(delay)  # the scheduler has not noticed the loss yet
            delay = min(delay * 2, 0.25)

    def _fail_backlog(self, channel: _Channel, error: Exception) -> None:
        info = error_info_for(error)
        for call in channel.backlog:
            self._calls.pop(id(call.state), None)
            call.holder = None
            if call.state.status == PENDING:
                self._core.transition(call.state, call.state.set_error, info)
        channel.backlog.clear()

    def _cancel(self, state: FutureState) -> None:
        entry = self._calls.pop(id(state), None)
        if state.status == PENDING:
            self._core.transition(state, state.set_cancelled, "cancelled by the caller")
        if entry is None:
            return
        channel, call = entry
        call.holder = None
        if call in channel.backlog:
            channel.backlog.remove(call)
        elif call.request_id is not None and channel.location is not None:
            channel.sent.pop(call.request_id, None)
            peers = self._core.peers
            peers.forget_request(channel.location.address, call.request_id)
            peers.notify(channel.location.address, m.ActorCancel(call.request_id))

    def fail_all(self, error: Exception) -> None:
        """The client is closing: every unfinished call fails with `error`."""
        info = error_info_for(error)
        for _, call in list(self._calls.values()):
            if call.state.status == PENDING:
                self._core.transition(call.state, call.state.set_error, info)
        self._calls.clear()
        for channel in self._channels.values():
            channel.backlog.clear()
            channel.sent.clear()
