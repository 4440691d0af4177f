"""`SchedulerConnection`: how a worker reaches its scheduler, registers and listens.

`connect` opens a connection to the scheduler and runs the handshake (role ``worker``,
with the cluster token); `register` starts the batched sender on it and sends
`RegisterWorker` with the keys the worker holds (so a scheduler the worker comes back
to learns its data), and `welcome` waits for the `WorkerWelcome`; `session` hands
every frame the scheduler sends to the worker until the connection breaks or the
scheduler stays silent for too long. Whether to reconnect, and for how long to try, is
the worker's decision (`Worker.serve`). `heartbeat` is the message the worker sends
every heartbeat interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psutil
import trio

from ..comm import handshake
from ..comm.address import format_address, parse_address, parse_host_port
from ..comm.batched import BatchedSender
from ..comm.connection import Connection, ConnectionClosed
from ..comm.liveness import SilenceWatch
from ..comm.routes import local_host_towards
from ..comm.streams import StreamClosed
from ..comm.transports import connect
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from .spill import SpillBuffer
from .state import WorkerState

logger = logging.getLogger("trident.worker")

#: Seconds to connect, shake hands and be welcomed before the attempt fails.
CONNECT_TIMEOUT = 10.0


class SchedulerConnection:
    """Connections of one worker to the scheduler at `address`.

    Arguments:
        address: where the scheduler listens.
        token: the cluster token offered in the handshake (None: the scheduler
            requires none).
        ssl_context: the TLS context for the connection (None without TLS).
    """

    def __init__(self, address: str, *, token: str | None, ssl_context: Any) -> None:
        self.address = address
        self._token = token
        self._ssl_context = ssl_context

    def host(self) -> str | None:
        """The scheduler's host; None for an in-process scheduler."""
        scheme, location = parse_address(self.address)
        return None if scheme == "inproc" else parse_host_port(location)[0]

    async def default_listen_address(self, *, tls: bool) -> str:
        """A free port (``tls://`` or ``tcp://``) on the interface that routes to the
        scheduler (the loopback one for an in-process scheduler)."""
        host = await local_host_towards(self.host() or "127.0.0.1")
        return format_address("tls" if tls else "tcp", host, 0)

    async def connect(self, name: str) -> Connection:
        """A connection to the scheduler, the handshake done, as worker `name`.

        Raises `trio.TooSlowError` after `CONNECT_TIMEOUT` seconds, and what connecting
        and the handshake raise (`OSError`, `AuthenticationError`, `ProtocolError`).
        """
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await connect(self.address, ssl_context=self._ssl_context)
            connection = Connection(stream, peer=self.address)
            await handshake.offer(
                connection,
                role="worker",
                name=name,
                token=self._token,
                server_role="scheduler",
            )
        return connection

    def register(
        self,
        connection: Connection,
        nursery: trio.Nursery,
        info: m.WorkerInfo,
        keys: dict[str, int],
    ) -> BatchedSender:
        """Start registering on a fresh connection as `info`, holding `keys` (key ->
        bytes); return the sender for the connection (running in `nursery`).

        Messages sent with it before the welcome arrives reach the scheduler after the
        registration. Wait for the welcome with `welcome`.
        """
        sender = BatchedSender(connection)
        nursery.start_soon(sender.run)
        sender.send(m.RegisterWorker(info, keys))
        return sender

    @staticmethod
    async def welcome(connection: Connection) -> list[Any]:
        """Wait for the scheduler's welcome; return the messages that came with it.

        Raises `ProtocolError` if the scheduler answers anything but `WorkerWelcome`,
        `trio.TooSlowError` after `CONNECT_TIMEOUT` seconds.
        """
        with trio.fail_after(CONNECT_TIMEOUT):
            welcome = await connection.receive()
        if not welcome or not isinstance(welcome[0], m.WorkerWelcome):
            raise ProtocolError(f"expected WorkerWelcome, got {welcome!r}")
        return welcome[1:]

    async def session(
        self,
        connection: Connection,
        first: list[Any],
        receive: Callable[[list[Any]], bool],
        *,
        timeout: float,
        who: str,
    ) -> None:
        """Pass `first`, then every frame from `connection`, to `receive` until the
        connection is lost: broken, or silent for `timeout` seconds.

        `receive` returns True when the worker is closing; the session then ends at
        once. `who` names the worker in log messages.
        """
        watch = SilenceWatch(timeout)
        async with trio.open_nursery() as nursery:

            async def watch_silence() -> None:
                await watch.wait()
                logger.warning("worker %s: the scheduler sent nothing for %g s", who, timeout)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_silence)
            await self._receive(connection, first, receive, watch, who)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _receive(
        connection: Connection,
        first: list[Any],
        receive: Callable[[list[Any]], bool],
        watch: SilenceWatch,
        who: str,
    ) -> None:
        try:
            watch.heard()
            if receive(first):
                return
            while True:
                messages = await connection.receive()
                watch.heard()
                if receive(messages):
                    return
                del messages  # not kept while waiting for the next packet
        except ConnectionClosed:
            logger.info("worker %s: the scheduler closed the connection", who)
        except (StreamClosed, ProtocolError) as exc:
            # A scheduler that stops mid-packet (its cluster closing) is gone all the same.
            logger.warning("worker %s: lost the scheduler: %s", who, exc)


def heartbeat(
    state: WorkerState, process: psutil.Process, memory_limit: int, spill: SpillBuffer | None
) -> m.WorkerHeartbeat:
    """The worker's load and memory now, for the scheduler."""
    executing, ready, stored = state.load()
    try:
        memory = process.memory_info().rss
        cpu = process.cpu_percent(None)
    except psutil.Error:
        memory, cpu = 0, 0.0
    spilled = spill.spilled_bytes if spill is not None else 0
    return m.WorkerHeartbeat(memory, memory_limit, cpu, executing, ready, stored, spilled)
