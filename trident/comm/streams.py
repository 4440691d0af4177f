"""Byte streams behind one small interface, for trio and for asyncio.

Every transport provides ``send_all(data)``, ``receive_into(view) -> int`` (0 means the
peer closed) and ``aclose()``. `receive_into` lets large frames land directly in their
final buffer, with no intermediate copies. Transports that can write without waiting
also provide ``try_send(data) -> int``: the bytes written at once (0 when the
transport would have to wait), so a sender can skip a trip through the event loop.

Errors: a broken or reset connection raises `StreamClosed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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


#: Calls that complete without waiting before one yields to the event loop anyway, so a
#: busy connection cannot starve the other tasks.
YIELD_EVERY = 32


class TrioTcpStream:
    """A TCP connection on trio that reads and writes its socket's descriptor directly.

    A send or receive that can complete at once does so without a trip through the
    event loop (trio's own socket methods always yield); only a call that has to wait
    parks the task, on `trio.lowlevel.wait_writable` / `wait_readable`. That removes a
    loop turn from every hop of a round trip. Every `YIELD_EVERY` calls that did not
    wait still yield once, for fairness.
    """

    def __init__(self, stream: trio.SocketStream):
        self._stream = stream
        self._socket = stream.socket
        self._fd = self._socket.fileno()
        self._unyielded = 0
        tune_socket(self._socket)

    async def _fair_share(self) -> None:
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    @property
    def peer(self) -> str:
        try:
            host, port = self._socket.getpeername()[:2]
            return f"{host}:{port}"
        except OSError:
            return "?"

    def try_send(self, data: Frame) -> int:
        """Write what the socket takes now; never waits. Raises `StreamClosed`."""
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None

    async def send_all(self, data: Frame) -> None:
        view = memoryview(data).cast("B")
        total, size = 0, view.nbytes
        try:
            while total < size:
                try:
                    total += os.write(self._fd, view[total:])
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self._fd)
        except (trio.ClosedResourceError, OSError) as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None
        await self._fair_share()

    async def receive_into(self, view: memoryview) -> int:
        try:
            while True:
                try:
                    received = os.readv(self._fd, [view])
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(self._fd)
                    continue
                await self._fair_share()
                return received
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

    def try_send(self, data: Frame) -> int:
        """Queue all of `data` for the other end (an in-process stream never waits)."""
        if self._out.closed or self._in.closed:
            raise StreamClosed("in-process stream is closed")
        chunk = bytes(data)
        self._out.chunks.append(chunk)
        self._out.wake()
        return len(chunk)

    async def send_all(self, data: Frame) -> None:
        self.try_send(data)

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

    def try_send(self, data: Frame) -> int:
        """Write what the socket takes now; never waits. Raises `StreamClosed`."""
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise StreamClosed(str(exc) or type(exc).__name__) from None

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
