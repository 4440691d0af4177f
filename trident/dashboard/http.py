"""A small HTTP/1.1 server on trio streams, enough for the dashboard.

h11 does the protocol (parsing, framing, keep-alive, chunked bodies); this module runs
one task per connection under the caller's nursery, hands each request to an
application function and writes what it returns: a whole `Response`, or a
`StreamingResponse` whose chunks are written as they come (server-sent events).

Only GET and HEAD are served; request bodies are read and dropped. Anyone who can reach
the port can send requests, so every connection is bounded before the token is checked:
a request head of at most `MAX_HEAD_BYTES` and `MAX_HEADERS` headers that completes
within `HEAD_TIMEOUT` once begun (slow-loris), a body of at most `MAX_BODY_BYTES` within
`BODY_TIMEOUT`, `IDLE_TIMEOUT` seconds between requests on a kept-alive connection, and
at most `MAX_WAITING_CONNECTIONS` connections waiting for a request at once (beyond
that the one that has waited longest is closed).
"""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie

import attrs
import h11
import trio

from ..comm.admission import HandshakeGate

logger = logging.getLogger("trident.dashboard")

#: Seconds a connection may stay idle waiting for the first byte of a request.
IDLE_TIMEOUT = 60.0
#: Seconds a request head may take to arrive once its first byte has.
HEAD_TIMEOUT = 5.0
#: Seconds a request body may take to arrive.
BODY_TIMEOUT = 5.0
#: Bytes of request line and headers; a longer head is answered 431 and closed.
MAX_HEAD_BYTES = 16 * 1024
#: Headers in one request; more are answered 431 and closed.
MAX_HEADERS = 64
#: Bytes of request body (the dashboard uses none); a larger one is answered 413.
MAX_BODY_BYTES = 64 * 1024
#: Connections per server waiting for (or sending) a request head at once.
MAX_WAITING_CONNECTIONS = 256
READ_SIZE = 16 * 1024
SERVER_NAME = b"trident"


@attrs.frozen
class Request:
    """One HTTP request: `path` without the query; header names are lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def cookies(self) -> dict[str, str]:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in cookie.items()}


@attrs.frozen
class Response:
    """A complete response."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = attrs.Factory(list)


SendChunk = Callable[[bytes], Awaitable[None]]


@attrs.frozen
class StreamingResponse:
    """A response whose body is written chunk by chunk.

    The server calls ``await produce(send)``; the body ends when `produce` returns.
    `send` raises `trio.BrokenResourceError` once the client has gone away.
    """

    status: int
    produce: Callable[[SendChunk], Awaitable[None]]
    content_type: str
    headers: list[tuple[str, str]] = attrs.Factory(list)


App = Callable[[Request], Awaitable[Response | StreamingResponse]]

#: Sent with every response: no sniffing, no framing, scripts only from this server.
SECURITY_HEADERS = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", "default-src 'self'; style-src 'self'; img-src 'self' data:"),
    ("referrer-policy", "no-referrer"),
]


async def serve_http(
    listeners: list[trio.SocketListener],
    app: App,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listeners` until cancelled; each connection runs in its own task.

    Reports the listeners through `task_status` once they accept connections.
    """
    gate = HandshakeGate("dashboard", MAX_WAITING_CONNECTIONS, waiting_for="a request")

    async def handle(stream: trio.SocketStream) -> None:
        await HttpConnection(stream, app, gate).serve()

    await trio.serve_listeners(handle, listeners, task_status=task_status)


class HttpConnection:
    """One client connection: requests in, responses out, until either side closes."""

    def __init__(self, stream: trio.abc.Stream, app: App, gate: HandshakeGate | None = None):
        """`gate`, when given, bounds the connections waiting for a request at once."""
        self.stream = stream
        self.app = app
        self.gate = gate
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    async def serve(self) -> None:
        try:
            while True:
                if self.gate is None:
                    request = await self._next_request()
                else:
                    with self.gate.admit() as admitted:
                        request = await self._next_request()
                    if admitted.cancelled_caught:
                        return  # evicted to make room for newer connections
                if request is None:
                    return
                if len(request.headers) > MAX_HEADERS:
                    await self._send_error(431, f"more than {MAX_HEADERS} headers")
                    return
                if not await self._drain_body(request):
                    await self._send_error(
                        413, f"request bodies are limited to {MAX_BODY_BYTES} bytes"
                    )
                    return
                await self._respond(request)
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.our_state is h11.CLOSED:
                    return
                self.conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except h11.RemoteProtocolError as exc:
            await self._send_error(exc.error_status_hint, str(exc))
        finally:
            await self._close()

    async def _next_request(self) -> Request | None:
        """The next request's head: the first byte within `IDLE_TIMEOUT`, the rest within
        `HEAD_TIMEOUT` of it. Raises `trio.TooSlowError` when either runs out."""
        begun = bool(self.conn.trailing_data[0])
        with trio.fail_after(HEAD_TIMEOUT if begun else IDLE_TIMEOUT) as scope:
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    data = await self.stream.receive_some(READ_SIZE)
                    if data and not begun:
                        begun = True
                        scope.deadline = trio.current_time() + HEAD_TIMEOUT
                    self.conn.receive_data(bytes(data))
                    continue
                if isinstance(event, h11.Request):
                    return _parse_request(event)
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return None

    async def _drain_body(self, request: Request) -> bool:
        """Read and drop the request's body within `BODY_TIMEOUT`; False, having read at
        most `MAX_BODY_BYTES`, if it is larger. Raises `trio.TooSlowError`."""
        try:
            declared = int(request.headers.get("content-length", "0"))
        except ValueError:
            declared = 0  # h11 has already refused a malformed length
        if declared > MAX_BODY_BYTES:
            return False
        received = 0
        with trio.fail_after(BODY_TIMEOUT):
            while self.conn.their_state is h11.SEND_BODY:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    self.conn.receive_data(bytes(await self.stream.receive_some(READ_SIZE)))
                elif isinstance(event, h11.Data):
                    received += len(event.data)
                    if received > MAX_BODY_BYTES:
                        return False
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        return True

    async def _respond(self, request: Request) -> None:
        if request.method not in ("GET", "HEAD"):
            response: Response | StreamingResponse = Response(405, b"method not allowed\n")
        else:
            try:
                response = await self.app(request)
            except Exception:
                logger.exception("dashboard: %s %s failed", request.method, request.path)
                response = Response(500, b"internal error\n")
        head = request.method == "HEAD"
        if isinstance(response, Response):
            await self._send_response(response, head)
        else:
            await self._send_stream(response, head)

    async def _send_response(self, response: Response, head: bool) -> None:
        headers = self._headers(response.content_type, response.headers)
        headers.append(("content-length", str(len(response.body))))
        await self._send(h11.Response(status_code=response.status, headers=headers))
        if response.body and not head:
            await self._send(h11.Data(data=response.body))
        await self._send(h11.EndOfMessage())

    async def _send_stream(self, response: StreamingResponse, head: bool) -> None:
        headers = self._headers(response.content_type, response.headers)
        await self._send(h11.Response(status_code=response.status, headers=headers))
        if not head:

            async def send(chunk: bytes) -> None:
                await self._send(h11.Data(data=chunk))

            await response.produce(send)
        await self._send(h11.EndOfMessage())

    @staticmethod
    def _headers(content_type: str, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            ("server", SERVER_NAME.decode()),
            ("content-type", content_type),
            *SECURITY_HEADERS,
            *extra,
        ]

    async def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            await self.stream.send_all(data)

    async def _send_error(self, status: int, reason: str) -> None:
        body = f"{reason}\n".encode()
        try:
            with trio.move_on_after(1):
                await self._send(
                    h11.Response(
                        status_code=status,
                        headers=[
                            ("content-type", "text/plain; charset=utf-8"),
                            ("content-length", str(len(body))),
                            ("connection", "close"),
                        ],
                    )
                )
                await self._send(h11.Data(data=body))
                await self._send(h11.EndOfMessage())
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass

    async def _close(self) -> None:
        with (
            trio.CancelScope(shield=True),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            await self.stream.aclose()


def _parse_request(event: h11.Request) -> Request:
    target = event.target.decode("latin-1")
    parts = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers
    }
    return Request(event.method.decode("ascii"), parts.path or "/", query, headers)
