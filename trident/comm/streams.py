"""Byte streams behind one small interface, for trio and for asyncio.

Every transport provides ``send_all(data)``, ``receive_into(view) -> int`` (0 means the
peer closed) and ``aclose()``. `receive_into` lets large frames land directly in their
final buffer, with no intermediate copies.

Errors: a broken or reset connection raises `StreamClosed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from typing import Protocol

import trio

Frame = bytes | bytearray | memoryview


class StreamClosed(Exception):
    """The stream is closed or broken; no more data can be sent or received."""


class ByteStream(Protocol):
    async def send_all(self, data: Frame) -> None: ...

    async def receive_into(self, view: memoryview) -> int: ...

    async def aclose(self) -> None: ...


def tune_socket(sock: socket.socket | trio.socket.SocketType) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class TrioTcpStream:
    """A TCP connection on trio."""

    def __init__(self, stream: trio.SocketStream):
        self._stream = stream
        self._socket = stream.socket
        tune_socket(self._socket)

    @property
    def peer(self) -> str:
        try:
            host, port = self._socket.getpeername()[:2]
            return f"{host}:{port}"
        except OSError:
            return "?"

    async def send_all(self, data: Frame) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None

    async def receive_into(self, view: memoryview) -> int:
        try:
            return await self._socket.recv_into(view)
        except (trio.ClosedResourceError, OSError) as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Pipe:
    """One direction of an in-process stream: a queue of byte chunks."""

    __slots__ = ("chunks", "closed", "offset", "waiter")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.offset = 0
        self.closed = False
        self.waiter: trio.Event | None = None

    def wake(self) -> None:
        if self.waiter is not None:
            self.waiter.set()
            self.waiter = None


class InprocStream:
    """One end of an in-process connection inside a single trio run (``inproc://``)."""

    def __init__(self, outgoing: _Pipe, incoming: _Pipe, peer: str):
        self._out = outgoing
        self._in = incoming
        self.peer = peer

    @classmethod
    def pair(cls, name: str) -> tuple[InprocStream, InprocStream]:
        a, b = _Pipe(), _Pipe()
        return cls(a, b, f"inproc://{name}"), cls(b, a, f"inproc://{name}#client")

    async def send_all(self, data: Frame) -> None:
        if self._out.closed or self._in.closed:
            raise StreamClosed("in-process stream is closed")
        self._out.chunks.append(bytes(data))
        self._out.wake()
        await trio.lowlevel.checkpoint()

    async def receive_into(self, view: memoryview) -> int:
        pipe = self._in
        while not pipe.chunks:
            if pipe.closed:
                return 0
            if self._out.closed:
                raise StreamClosed("in-process stream is closed")
            pipe.waiter = event = trio.Event()
            await event.wait()
        total = 0
        size = view.nbytes
        while pipe.chunks and total < size:
            chunk = pipe.chunks[0]
            n = min(len(chunk) - pipe.offset, size - total)
            view[total : total + n] = chunk[pipe.offset : pipe.offset + n]
            total += n
            pipe.offset += n
            if pipe.offset == len(chunk):
                pipe.chunks.popleft()
                pipe.offset = 0
        return total

    async def aclose(self) -> None:
        for pipe in (self._out, self._in):
            pipe.closed = True
            pipe.wake()
        await trio.lowlevel.checkpoint()


class AsyncioTcpStream:
    """A TCP connection on asyncio, reading straight into caller buffers."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop):
        sock.setblocking(False)
        tune_socket(sock)
        self._sock = sock
        self._loop = loop

    @property
    def peer(self) -> str:
        try:
            host, port = self._sock.getpeername()[:2]
            return f"{host}:{port}"
        except OSError:
            return "?"

    async def send_all(self, data: Frame) -> None:
        try:
            await self._loop.sock_sendall(self._sock, data)
        except OSError as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None

    async def receive_into(self, view: memoryview) -> int:
        try:
            return await self._loop.sock_recv_into(self._sock, view)
        except OSError as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        self._sock.close()
