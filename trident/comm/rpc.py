"""`PeerPool`: request/reply over pooled, authenticated connections to workers.

Clients gather and scatter through it; workers fetch dependencies from each other
through it. One connection per remote address carries any number of concurrent
requests, matched to replies by ``request_id``. Works under trio and asyncio (anyio).
"""

from __future__ import annotations

import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Any

import anyio

from ..protocol.errors import ProtocolError
from . import handshake
from .batched import BatchedSender
from .connection import Connection, ConnectionClosed
from .streams import StreamClosed
from .transports import connect

logger = logging.getLogger("trident.comm")

CONNECT_TIMEOUT = 10.0


class PeerUnavailable(ConnectionError):
    """The peer could not be reached or the connection broke before it replied."""


class _Pending:
    """A request waiting for its reply: an event to wake a waiting task, or a callback."""

    __slots__ = ("callback", "error", "event", "reply")

    def __init__(self, callback: Callable[[Any], None] | None = None) -> None:
        self.event = anyio.Event() if callback is None else None
        self.callback = callback
        self.reply: Any = None
        self.error: BaseException | None = None

    def resolve(self, reply: Any = None, error: BaseException | None = None) -> None:
        """Deliver the reply (or the error) exactly once."""
        self.reply = reply
        self.error = error
        if self.callback is not None:
            callback, self.callback = self.callback, None
            callback(error if error is not None else reply)
        elif self.event is not None:
            self.event.set()


class _Channel:
    def __init__(self, address: str) -> None:
        self.address = address
        self.ready = anyio.Event()
        self.sender: BatchedSender | None = None
        self.connection: Connection | None = None
        self.error: BaseException | None = None
        self.pending: dict[int, _Pending] = {}
        self.scope: anyio.CancelScope | None = None


class PeerPool:
    """Connections to peers, opened on first use and kept until `close`."""

    def __init__(
        self,
        spawner: Any,
        *,
        role: str,
        name: str,
        token: str | None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """`spawner` is the trio nursery or anyio task group that hosts the connections.

        `ssl_context` is needed to reach peers at ``tls://`` addresses; its
        ``trident_peer_context`` (see `Security.client_ssl_context`) is used when it has
        one, as workers may serve certificates of their own.
        """
        self._spawner = spawner
        self._role = role
        self._name = name
        self._token = token
        self._ssl_context = getattr(ssl_context, "trident_peer_context", ssl_context)
        self._channels: dict[str, _Channel] = {}
        self._ids = itertools.count(1)
        self.closed = False

    async def request(self, address: str, build: Callable[[int], Any]) -> Any:
        """Send ``build(request_id)`` to `address` and return the matching reply.

        Raises `PeerUnavailable` if the peer cannot be reached or drops the connection.
        Cancelling the caller abandons the request (a late reply is ignored).
        """
        channel = await self._channel(address)
        request_id = next(self._ids)
        pending = _Pending()
        channel.pending[request_id] = pending
        try:
            assert channel.sender is not None
            assert pending.event is not None
            channel.sender.send(build(request_id))
            await pending.event.wait()
        finally:
            channel.pending.pop(request_id, None)
        if pending.error is not None:
            raise PeerUnavailable(f"{address}: {pending.error}") from pending.error
        return pending.reply

    async def connect(self, address: str) -> None:
        """Make sure a connection to `address` is open. Raises `PeerUnavailable`."""
        await self._channel(address)

    def try_send(
        self, address: str, build: Callable[[int], Any], on_reply: Callable[[Any], None]
    ) -> int | None:
        """Send ``build(request_id)`` if a connection to `address` is open; never waits.

        `on_reply` later receives the reply, or a `PeerUnavailable` if the connection
        breaks first. Returns the request id, or None when no connection is ready (the
        caller should `connect` first).
        """
        channel = self._channels.get(address)
        if channel is None or channel.sender is None or channel.error is not None:
            return None
        request_id = next(self._ids)
        channel.pending[request_id] = _Pending(on_reply)
        channel.sender.send(build(request_id))
        return request_id

    def forget_request(self, address: str, request_id: int) -> None:
        """Stop waiting for the reply to `request_id` (a late reply is ignored)."""
        channel = self._channels.get(address)
        if channel is not None:
            channel.pending.pop(request_id, None)

    def notify(self, address: str, message: Any) -> bool:
        """Send a one-way message on an open connection; False if there is none."""
        channel = self._channels.get(address)
        if channel is None or channel.sender is None or channel.error is not None:
            return False
        channel.sender.send(message)
        return True

    async def _channel(self, address: str) -> _Channel:
        if self.closed:
            raise PeerUnavailable("the peer pool is closed")
        channel = self._channels.get(address)
        if channel is None or channel.error is not None:
            channel = _Channel(address)
            self._channels[address] = channel
            self._spawner.start_soon(self._run_channel, channel)
        await channel.ready.wait()
        if channel.error is not None:
            raise PeerUnavailable(f"cannot reach {address}: {channel.error}") from channel.error
        return channel

    async def _run_channel(self, channel: _Channel) -> None:
        try:
            with anyio.CancelScope() as scope:
                channel.scope = scope
                try:
                    with anyio.fail_after(CONNECT_TIMEOUT):
                        stream = await connect(channel.address, ssl_context=self._ssl_context)
                        connection = Connection(stream, peer=channel.address)
                        await handshake.offer(
                            connection,
                            role=self._role,
                            name=self._name,
                            token=self._token,
                            server_role="worker",
                        )
                except Exception as exc:
                    channel.error = exc
                    return
                channel.connection = connection
                channel.sender = BatchedSender(connection)
                channel.ready.set()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(channel.sender.run)
                    try:
                        await self._receive_replies(channel)
                    finally:
                        tg.cancel_scope.cancel()
        finally:
            if channel.error is None:
                channel.error = PeerUnavailable(f"connection to {channel.address} closed")
            channel.ready.set()
            failure = PeerUnavailable(f"connection to {channel.address} lost: {channel.error}")
            for pending in list(channel.pending.values()):
                pending.resolve(error=failure)
            channel.pending.clear()
            if self._channels.get(channel.address) is channel:
                del self._channels[channel.address]
            if channel.connection is not None:
                with anyio.CancelScope(shield=True):
                    await channel.connection.aclose()

    async def _receive_replies(self, channel: _Channel) -> None:
        assert channel.connection is not None
        try:
            while True:
                _resolve_replies(channel, await channel.connection.receive())
        except (ConnectionClosed, StreamClosed, ProtocolError) as exc:
            channel.error = exc

    def close(self) -> None:
        """Close every connection (their tasks end soon after; pending requests fail)."""
        self.closed = True
        for channel in list(self._channels.values()):
            if channel.scope is not None:
                channel.scope.cancel()


def _resolve_replies(channel: _Channel, replies: list[Any]) -> None:
    """Hand each reply to the request waiting for it.

    A function of its own so that no reply outlives this call in the receiving loop's
    locals: a reply may carry a large result, which the requester alone should hold.
    """
    for reply in replies:
        request_id = getattr(reply, "request_id", None)
        pending = channel.pending.pop(request_id, None) if request_id is not None else None
        if pending is not None:
            pending.resolve(reply)
