"""TLS byte streams (``tls://``): `trio.SSLStream` under trio, asyncio's TLS under asyncio.

Both classes offer the `ByteStream` interface of `streams`. TLS records are decrypted
into a fresh buffer, so `receive_into` copies once; encryption costs more than that copy.
The TLS handshake runs in `open_*` / `accept_trio`, bounded by `TLS_HANDSHAKE_TIMEOUT`,
so a stream handed to a connection handler is already encrypted and authenticated.

A client context may carry a pin, ``context.trident_fingerprint`` (set by
`Security.client_ssl_context`): the SHA-256 of the certificate the server must present.
`open_*` check it right after the TLS handshake and refuse any other certificate
(`TLSError`) before a byte of the connection is used.

A stream's `certificate_binding` is the SHA-256 of the server's certificate where the
handshake must bind its token proofs to it: on the client side when its context checks
no certificate (``context.trident_bind_certificate``), on the server side always (its
own certificate, ``context.trident_certificate``). See `trident.comm.handshake`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ssl

import anyio
import trio

from .streams import Frame, StreamClosed, tune_socket

TLS_HANDSHAKE_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 1.0

#: OpenSSL reasons, and what they mean for a trident peer.
_HINTS = {
    "WRONG_VERSION_NUMBER": "the peer does not speak TLS (is it a tcp:// address?)",
    "RECORD_LAYER_FAILURE": "the peer does not speak TLS (is it a tcp:// address?)",
    "HTTP_REQUEST": "the peer does not speak TLS",
    "UNEXPECTED_MESSAGE": "the peer does not speak TLS (is it a tcp:// address?)",
    "CERTIFICATE_VERIFY_FAILED": "the certificate is not signed by the cluster's CA",
    "CERTIFICATE_REQUIRED": "the server requires a client certificate (Security(tls_cert=...))",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the peer presented no certificate",
    "UNKNOWN_CA": "the certificate is not signed by the cluster's CA",
    "BAD_CERTIFICATE": "the certificate was refused",
    "UNEXPECTED_EOF": "the peer closed the connection in the TLS handshake (a tcp:// client?)",
}


class TLSError(ConnectionError):
    """A TLS handshake failed: a certificate was refused or the peer does not speak TLS."""


def describe_tls_error(exc: BaseException) -> str:
    """A one-line explanation of a TLS failure (the SSL error may be `exc`'s cause)."""
    cause = exc if isinstance(exc, ssl.SSLError) else exc.__cause__ or exc
    reason = getattr(cause, "reason", None) or ""
    text = str(cause) or type(cause).__name__
    for marker, hint in _HINTS.items():
        if marker in reason or marker in text:
            return f"{hint} [{reason or text}]"
    return text


class TrioTlsStream:
    """A TLS connection on trio."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream], peer: str):
        self._stream = stream
        self.peer = peer
        self.certificate_binding: str | None = None

    async def send_all(self, data: Frame) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamClosed(describe_tls_error(exc)) from None

    async def receive_into(self, view: memoryview) -> int:
        try:
            data = await self._stream.receive_some(view.nbytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamClosed(describe_tls_error(exc)) from None
        n = len(data)
        view[:n] = data
        return n

    async def aclose(self) -> None:
        # Say goodbye (close_notify) if the peer lets us within a moment, else just close.
        with trio.move_on_after(_CLOSE_TIMEOUT) as scope:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.aclose()
        if scope.cancelled_caught:
            await trio.aclose_forcefully(self._stream.transport_stream)


def _peer_name(sock: trio.socket.SocketType) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "?"


async def _handshake(stream: trio.SSLStream[trio.SocketStream], peer: str) -> TrioTlsStream:
    try:
        with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
            await stream.do_handshake()
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream.transport_stream)
        raise TLSError(f"TLS handshake with {peer} timed out") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        await trio.aclose_forcefully(stream.transport_stream)
        raise TLSError(f"TLS handshake with {peer} failed: {describe_tls_error(exc)}") from None
    return TrioTlsStream(stream, peer)


def client_binding(context: ssl.SSLContext, certificate: bytes | None) -> str | None:
    """The `certificate_binding` of a client stream: the server certificate's SHA-256 if
    `context` checks no certificate and leaves that to the handshake, else None."""
    if not getattr(context, "trident_bind_certificate", False):
        return None
    return hashlib.sha256(certificate).hexdigest() if certificate else "no certificate"


def check_pin(context: ssl.SSLContext, certificate: bytes | None, peer: str) -> None:
    """Raise `TLSError` unless the server's DER `certificate` has the context's pinned
    fingerprint (no pin: nothing to check)."""
    pin = getattr(context, "trident_fingerprint", None)
    if pin is None:
        return
    seen = hashlib.sha256(certificate).hexdigest() if certificate else "no certificate"
    if not hmac.compare_digest(seen, pin):
        raise TLSError(
            f"the TLS certificate of {peer} is not the cluster's: its SHA-256 is {seen}, "
            f"the credential pins {pin}"
        )


async def open_trio(host: str, port: int, context: ssl.SSLContext) -> TrioTlsStream:
    """Connect and complete the TLS handshake. Raises `OSError` (`TLSError` for TLS)."""
    tcp = await trio.open_tcp_stream(host, port)
    tune_socket(tcp.socket)
    stream = trio.SSLStream(tcp, context, server_hostname=host)
    tls = await _handshake(stream, f"{host}:{port}")
    certificate = stream.getpeercert(binary_form=True)
    try:
        check_pin(context, certificate, tls.peer)
    except TLSError:
        await trio.aclose_forcefully(stream.transport_stream)
        raise
    tls.certificate_binding = client_binding(context, certificate)
    return tls


async def accept_trio(tcp: trio.SocketStream, context: ssl.SSLContext) -> TrioTlsStream:
    """Server side of the TLS handshake on an accepted connection. Raises `TLSError`."""
    tune_socket(tcp.socket)
    tls = await _handshake(trio.SSLStream(tcp, context, server_side=True), _peer_name(tcp.socket))
    tls.certificate_binding = getattr(context, "trident_certificate", None)
    return tls


class AsyncioTlsStream:
    """A TLS connection on asyncio (its stream reader and writer)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str):
        self._reader = reader
        self._writer = writer
        self.peer = peer
        self.certificate_binding: str | None = None

    async def send_all(self, data: Frame) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, ssl.SSLError) as exc:
            raise StreamClosed(describe_tls_error(exc)) from None

    async def receive_into(self, view: memoryview) -> int:
        try:
            data = await self._reader.read(view.nbytes)
        except (OSError, ssl.SSLError) as exc:
            raise StreamClosed(describe_tls_error(exc)) from None
        n = len(data)
        view[:n] = data
        return n

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), _CLOSE_TIMEOUT)


async def open_asyncio(host: str, port: int, context: ssl.SSLContext) -> AsyncioTlsStream:
    """Connect and complete the TLS handshake under asyncio. Raises `OSError`/`TLSError`."""
    peer = f"{host}:{port}"
    try:
        reader, writer = await asyncio.open_connection(
            host,
            port,
            ssl=context,
            server_hostname=host,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
        )
    except ssl.SSLError as exc:
        raise TLSError(f"TLS handshake with {peer} failed: {describe_tls_error(exc)}") from None
    ssl_object = writer.get_extra_info("ssl_object")
    certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    try:
        check_pin(context, certificate, peer)
    except TLSError:
        writer.transport.abort()
        raise
    sock = writer.get_extra_info("socket")
    if sock is not None:
        tune_socket(sock)
    tls = AsyncioTlsStream(reader, writer, peer)
    tls.certificate_binding = client_binding(context, certificate)
    return tls


#: How long `speaks_tls` waits for a server's TLS answer.
TLS_PROBE_TIMEOUT = 1.0


async def speaks_tls(host: str, port: int) -> bool:
    """Whether the server at `host`:`port` answers a TLS handshake (trio or asyncio).

    Only a probe, to explain why a plain-TCP peer gets no answer: nothing is sent but a
    TLS ClientHello, and no certificate is trusted or presented. A server that answers
    with TLS records (a finished handshake, or a TLS alert such as "certificate
    required") speaks TLS; bytes that are not TLS, a closed connection or silence for
    `TLS_PROBE_TIMEOUT` seconds mean it does not. Never raises `OSError`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with anyio.move_on_after(TLS_PROBE_TIMEOUT):
        try:
            stream = await anyio.connect_tcp(
                host, port, ssl_context=context, tls_standard_compatible=False
            )
        except ssl.SSLError as exc:
            return "ALERT" in (exc.reason or "")
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
            return False
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(stream)
        return True
    return False
