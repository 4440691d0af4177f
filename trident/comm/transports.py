"""Opening connections (`connect`) and accepting them (`serve`) for every transport.

`connect` works under trio and asyncio (tcp, tls) or trio only (inproc). `serve` is trio
only: servers are actors, and actors run on trio. ``tls://`` needs an `ssl.SSLContext`
on both sides (see `trident.Security`).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import sniffio
import trio

from . import tls
from .address import AddressError, format_address, parse_address, parse_host_port
from .admission import HandshakeGate
from .streams import AsyncioTcpStream, ByteStream, InprocStream, StreamClosed, TrioTcpStream

logger = logging.getLogger("trident.comm")

Handler = Callable[[ByteStream], Awaitable[None]]

_inproc_listeners: dict[str, tuple[trio.Nursery, Handler]] = {}
_inproc_counter = itertools.count(1)


def unique_inproc_address(prefix: str) -> str:
    return f"inproc://{prefix}-{next(_inproc_counter)}"


async def connect(address: str, *, ssl_context: ssl.SSLContext | None = None) -> ByteStream:
    """Open a byte stream to `address`. Raises `OSError` if nobody listens there.

    ``tls://`` addresses need `ssl_context` (`AddressError` without it) and complete the
    TLS handshake before returning (`tls.TLSError`, an `OSError`, if it fails).
    Checkpoints; bound its time with a cancel scope (``anyio.fail_after``).
    """
    scheme, location = parse_address(address)
    library = sniffio.current_async_library()
    if scheme == "inproc":
        if library != "trio":
            raise AddressError(f"{address}: in-process addresses only work under trio")
        entry = _inproc_listeners.get(location)
        if entry is None:
            raise ConnectionRefusedError(f"nothing listens on {address}")
        nursery, handler = entry
        server_end, client_end = InprocStream.pair(location)
        nursery.start_soon(_run_handler, handler, server_end, address)
        await trio.lowlevel.checkpoint()
        return client_end
    host, port = parse_host_port(location)
    try:
        return await _connect_network(scheme, host, port, ssl_context, library)
    except tls.TLSError:
        raise
    except socket.gaierror as exc:
        raise HostNotFound(f"cannot resolve {host!r} ({exc.strerror or exc})") from None
    except OSError as exc:
        raise _simplified(exc, host, port) from None


class HostNotFound(OSError):
    """A host name that does not resolve (the message says ``cannot resolve HOST``)."""


def _simplified(exc: OSError, host: str, port: int) -> OSError:
    """One plain `OSError` for a failed TCP connect (trio reports every address it tried
    in an exception group): `ConnectionRefusedError` when every attempt was refused."""
    cause = exc.__cause__
    leaves = (
        [e for e in _leaves(cause) if isinstance(e, OSError)]
        if isinstance(cause, BaseExceptionGroup)
        else [exc]
    )
    if leaves and all(isinstance(e, ConnectionRefusedError) for e in leaves):
        return ConnectionRefusedError(errno.ECONNREFUSED, f"connection refused by {host}:{port}")
    first = leaves[0] if leaves else exc
    if first is exc:
        return exc
    return type(first)(first.errno, f"{first.strerror or first} ({host}:{port})")


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in _leaves(inner)]
    return [group]


async def _connect_network(
    scheme: str, host: str, port: int, ssl_context: ssl.SSLContext | None, library: str
) -> ByteStream:
    address = format_address(scheme, host, port)
    if scheme == "tls":
        if ssl_context is None:
            raise AddressError(
                f"{address}: tls:// addresses need TLS credentials "
                "(Security(tls_ca_file=..., tls_cert=..., tls_key=...))"
            )
        if library == "trio":
            return await tls.open_trio(host, port, ssl_context)
        return await tls.open_asyncio(host, port, ssl_context)
    if library == "trio":
        return TrioTcpStream(await trio.open_tcp_stream(host, port))
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, type_, proto, _, sockaddr in infos:
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return AsyncioTcpStream(sock, loop)
    raise error or OSError(f"cannot resolve {host!r}")


async def _run_handler(handler: Handler, stream: ByteStream, address: str) -> None:
    """Run one connection's handler; its failure closes that connection only."""
    try:
        await handler(stream)
    except StreamClosed:
        pass
    except Exception:
        logger.exception("connection handler on %s failed", address)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def serve(
    address: str,
    handler: Handler,
    *,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on `address`, running `handler(stream)` for each in its own task.

    Reports the bound address (with the real port for ``tcp://host:0``) through
    `task_status`; serves until cancelled. A handler that raises closes its connection
    and is logged; the listener keeps serving. On ``tls://`` addresses (which need
    `ssl_context`) the handler gets the stream once the TLS handshake succeeded; a peer
    that fails it is logged and closed. At most `MAX_PENDING_HANDSHAKES` connections per
    listener may be in their TLS handshake at once; beyond that the oldest is closed.
    """
    scheme, location = parse_address(address)
    if scheme == "tls" and ssl_context is None:
        raise AddressError(f"{address}: serving tls:// needs a certificate and key")
    if scheme == "inproc":
        async with trio.open_nursery() as nursery:
            if location in _inproc_listeners:
                raise OSError(f"{address} is already in use")
            _inproc_listeners[location] = (nursery, handler)
            try:
                task_status.started(address)
                await trio.sleep_forever()
            finally:
                _inproc_listeners.pop(location, None)
        return
    host, port = parse_host_port(location)
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=1024)
    bound = listeners[0].socket.getsockname()
    bound_address = format_address(scheme, host or bound[0], bound[1])
    gate = HandshakeGate(bound_address, waiting_for="their TLS handshake")

    async def on_stream(stream: trio.SocketStream) -> None:
        if ssl_context is None or scheme != "tls":
            await _run_handler(handler, TrioTcpStream(stream), bound_address)
            return
        try:
            with gate.admit() as admitted:
                secure = await tls.accept_trio(stream, ssl_context)
        except tls.TLSError as exc:
            logger.warning("%s: refused connection: %s", bound_address, exc)
            return
        if admitted.cancelled_caught:
            await stream.aclose()
            return
        await _run_handler(handler, secure, bound_address)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_stream, listeners)
        task_status.started(bound_address)


def is_inproc(address: str) -> bool:
    return address.startswith("inproc://")


def describe(stream: Any) -> str:
    return getattr(stream, "peer", "?")
