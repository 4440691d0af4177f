"""`Dashboard`: the scheduler's HTTP service — pages, JSON, live updates, ``/metrics``.

The scheduler starts it as a child of its own nursery (``Scheduler(dashboard_address=)``),
so it lives exactly as long as the scheduler. It reads `SchedulerState` only from the
scheduler's event loop and never between ticks or requests.

Routes:

- ``/status``, ``/workers``, ``/errors``: the pages (one HTML document; the script shows
  the view named by the path); ``/`` redirects to ``/status``.
- ``/api/events``: server-sent events, one update every `feed.TICK` seconds.
- ``/api/summary.json``, ``/api/workers.json``, ``/api/progress.json``,
  ``/api/task-stream.json?since=N``, ``/api/errors.json``: the same data on request.
- ``/metrics``: Prometheus text format.
- ``/health``: ``ok``, without authentication.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from typing import Any

import trio

from ..scheduler.state import SchedulerState
from . import metrics, snapshot
from .auth import TokenGate, Verdict
from .feed import UpdateFeed
from .http import Request, Response, SendChunk, StreamingResponse, serve_http
from .monitor import LoopMonitor

logger = logging.getLogger("trident.dashboard")

DEFAULT_PORT = 8787
PAGES = ("/status", "/workers", "/errors")
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: Seconds between comments on an idle event stream, so proxies keep it open.
KEEPALIVE_SECONDS = 15.0


def parse_dashboard_address(address: str | int, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"host:port"``, ``":port"`` or a port number -> (host, port).

    A missing host means `default_host` (loopback unless the caller says otherwise).
    """
    if isinstance(address, int):
        return default_host, address
    text = address.strip()
    if text.startswith("http://"):
        text = text[len("http://") :]
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid dashboard address {address!r}: expected host:port") from None
    if not 0 <= number < 65536:
        raise ValueError(f"invalid dashboard port {number}")
    return host, number


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listen on `host`:`port`; when that port is taken, on a free one (with a warning)."""
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        if port == 0:
            raise
        listeners = await trio.open_tcp_listeners(0, host=host)
        free = listeners[0].socket.getsockname()[1]
        logger.warning(
            "dashboard: port %d is not available (%s); serving on port %d instead",
            port,
            exc.strerror or exc,
            free,
        )
        return listeners


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


class Dashboard:
    """Serves the dashboard of `state` on `host`:`port` (0: a free port).

    `token`, when set, is required once per browser (see `TokenGate`). Run it with
    ``await nursery.start(dashboard.serve)``, which reports the ``host:port`` it
    listens on.
    """

    def __init__(
        self,
        state: SchedulerState,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
    ):
        self.state = state
        self.host = host
        self.port = port
        self.token = token
        self.address = ""
        self.monitor = LoopMonitor(lambda: state.transitions)
        self.feed = UpdateFeed(state, self.monitor)
        self._registry = metrics.make_registry(state, self.monitor)
        self._gate = TokenGate(token, port)
        self._page = _static("index.html")
        self._static = {name: (_static(name), kind) for name, kind in STATIC_FILES.items()}

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, then serve until cancelled."""
        listeners = await open_listeners(self.host, self.port)
        bound_port = listeners[0].socket.getsockname()[1]
        self.address = f"{_format_host(self.host)}:{bound_port}"
        self._gate = TokenGate(self.token, bound_port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.monitor.run)
            nursery.start_soon(self.feed.run)
            await nursery.start(serve_http, listeners, self.handle)
            logger.info("dashboard: serving on http://%s/status", self.address)
            task_status.started(self.address)

    # --- requests ------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | StreamingResponse:
        """Route one request (the `http.App` of this dashboard)."""
        path = request.path
        if path == "/health":
            return Response(200, b"ok\n")
        if path.startswith("/static/"):
            return self._static_file(path[len("/static/") :])
        verdict = self._gate.check(request)
        if verdict is Verdict.SET_COOKIE:
            return Response(
                303,
                headers=[
                    ("location", self._gate.location_without_token(request)),
                    self._gate.cookie_header(),
                ],
            )
        if verdict is not Verdict.ALLOWED:
            return _login_page(verdict)
        if path == "/":
            return Response(303, headers=[("location", "/status")])
        if path in PAGES:
            return Response(200, self._page, "text/html; charset=utf-8", _no_store())
        if path == "/metrics":
            return Response(200, metrics.render(self._registry), metrics.CONTENT_TYPE)
        if path == "/api/events":
            return self._event_stream()
        data = self._json(path, request)
        if data is None:
            return Response(404, b"not found\n")
        return Response(
            200,
            json.dumps(data, separators=(",", ":")).encode(),
            "application/json",
            _no_store(),
        )

    def _json(self, path: str, request: Request) -> Any:
        state = self.state
        now = time.time()
        if path == "/api/summary.json":
            return snapshot.summary(state, self.monitor, now)
        if path == "/api/workers.json":
            return snapshot.workers(state, now)
        if path == "/api/progress.json":
            return snapshot.progress(state)
        if path == "/api/task-stream.json":
            try:
                since = int(request.query.get("since", "0"))
            except ValueError:
                since = 0
            events, cursor = state.activity.events_since(since, snapshot.STREAM_BATCH)
            return {"events": snapshot.stream_rows(events), "cursor": cursor}
        if path == "/api/errors.json":
            errors, cursor = state.activity.errors_since(0)
            return {"errors": snapshot.error_rows(errors), "cursor": cursor}
        return None

    def _static_file(self, name: str) -> Response:
        entry = self._static.get(name)
        if entry is None:
            return Response(404, b"not found\n")
        body, kind = entry
        return Response(200, body, kind, [("cache-control", "no-cache")])

    def _event_stream(self) -> StreamingResponse:
        async def produce(send: SendChunk) -> None:
            first, channel = self.feed.subscribe()
            try:
                await send(b"retry: 2000\n\n" + first)
                while True:
                    chunk = b": keep-alive\n\n"
                    with trio.move_on_after(KEEPALIVE_SECONDS):
                        chunk = await channel.receive()
                    await send(chunk)
            except trio.EndOfChannel:
                return
            finally:
                self.feed.unsubscribe(channel)

        return StreamingResponse(200, produce, "text/event-stream", _no_store())


def _no_store() -> list[tuple[str, str]]:
    return [("cache-control", "no-store")]


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _login_page(verdict: Verdict) -> Response:
    """The 401 (no credentials) or 403 (wrong ones) page: a form to paste the token."""
    reason = (
        "That token is not this cluster's token."
        if verdict is Verdict.WRONG
        else "This cluster requires its token."
    )
    body = (
        "<!doctype html><meta charset=utf-8><title>trident dashboard</title>"
        "<link rel=stylesheet href=/static/dashboard.css>"
        "<main class=login><h1>trident dashboard</h1>"
        f"<p>{reason} Open the dashboard link that <code>trident up</code> (or "
        "<code>client.dashboard_link</code>) prints, or paste the cluster token (the "
        "<code>token</code> in the scheduler file) here; this browser then keeps a "
        "cookie.</p>"
        "<form method=get action=/status>"
        "<label for=token>Cluster token</label> "
        "<input id=token name=token type=password autocomplete=off required autofocus> "
        "<button type=submit>Log in</button></form></main>"
    ).encode()
    status = 403 if verdict is Verdict.WRONG else 401
    return Response(status, body, "text/html; charset=utf-8", _no_store())
