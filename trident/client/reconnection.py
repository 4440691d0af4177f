"""Opening the client's session with the scheduler, and getting it back once lost.

`Reconnection` belongs to one `ClientCore`. The first connection registers the client
(`RegisterClient`); when it is lost, `reconnect` tries again with growing pauses for up
to the core's `reconnect_timeout` seconds and resumes under the same client id
(`ResumeClient`, naming every key whose submission left the client). The scheduler
then reports the outcome of those keys and answers `ClientResumed`:

- it kept the client: pending submissions it reported as unknown were in transit
  when the connection broke, and are queued first again with their functions;
- it forgot the client: the functions of the tasks still queued are defined again,
  and pending futures it did not know fail with the error it reported.

To define functions again it keeps the payloads of the newest `FUNCTIONS_KEPT`
functions sent; a task whose function is no longer kept fails with
`SchedulerLostError`. Large function payloads (see `is_kept_function`) are not kept
here but by the pending futures of their tasks (`FutureState.function_payload`). If
the scheduler cannot be reached in time, every pending future fails with
`SchedulerLostError`.

Everything here runs in the core's event loop and edits the core's outgoing queue
under the core's lock.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import SchedulerLostError
from ..comm import handshake
from ..comm.connection import Connection
from ..comm.liveness import ReconnectFailed, reconnect
from ..comm.transports import HostNotFound, connect
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.failures import error_info_for
from ..protocol.serialize import Serialized, is_kept_function
from .future import PENDING, FutureState

if TYPE_CHECKING:
    from .core import ClientCore

logger = logging.getLogger("trident.client")

#: Pauses between attempts to reach a scheduler that is not listening yet (seconds).
FIRST_PAUSE = 0.05
MAX_PAUSE = 1.0
#: The least time an attempt gets, even once the deadline is (nearly) reached.
MIN_ATTEMPT_TIME = 0.2

#: Function payloads kept to define them again for a scheduler that forgot the client.
FUNCTIONS_KEPT = 10_000


class Reconnection:
    """Connects `core` to its scheduler, and reconnects and resumes it when lost."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
        #: set while resuming, until the scheduler says `ClientResumed`
        self.resuming: anyio.Event | None = None
        #: pending futures the scheduler reported erred while resuming (see `on_resumed`)
        self.unknown: list[tuple[FutureState, m.ErrorInfo]] = []
        #: payloads of functions sent, newest last
        self._function_payloads: OrderedDict[str, Serialized] = OrderedDict()

    async def open(self, *, resume: bool) -> Connection:
        """Connect, authenticate and register (or resume); return the connection.

        What arrives with the welcome (`SchedulerServices`, and on resume the outcome
        of every key up to `ClientResumed`) is handled before this returns. Raises
        `OSError`, `AuthenticationError` or `ProtocolError` if that fails.
        """
        core = self._core
        stream = await connect(core.address, ssl_context=core._ssl_context)
        connection = Connection(stream, peer=core.address)
        try:
            await handshake.offer(
                connection,
                role="client",
                name=core.name,
                token=core._token,
                server_role="scheduler",
            )
            if resume:
                self.resuming = anyio.Event()
                registration: Any = m.ResumeClient(core.client_id, core.name, self._resumable())
            else:
                registration = m.RegisterClient(core.client_id, core.name)
            await connection.send([registration])
            first = await connection.receive()
            if not first or not isinstance(first[0], m.ClientWelcome):
                raise ProtocolError(f"expected ClientWelcome, got {first!r}")
            core._handle_messages(first)
            while self.resuming is not None and not self.resuming.is_set():
                core._handle_messages(await connection.receive())
        except BaseException:
            with anyio.CancelScope(shield=True):
                await connection.aclose()
            raise
        finally:
            self.resuming = None
        return connection

    async def open_first(self, timeout: float) -> Connection:
        """`open` the client's first session, waiting up to `timeout` seconds for a
        scheduler to listen at the address (it may still be starting).

        Raises one `OSError`: ``no scheduler at ADDRESS after N s (connection refused)``
        once the time is up, or ``cannot resolve HOST`` at once (`HostNotFound`); and
        `AuthenticationError`, `TLSError` or `ProtocolError` at once for a server that
        answers but refuses us or is not a trident scheduler; `TimeoutError` if a
        server accepted the connection but did not answer in time.
        """
        address = self._core.address
        deadline = anyio.current_time() + timeout
        pause = FIRST_PAUSE
        reason = ""
        while True:
            try:
                with anyio.fail_after(max(deadline - anyio.current_time(), MIN_ATTEMPT_TIME)):
                    return await self.open(resume=False)
            except HostNotFound:
                raise
            except (ConnectionRefusedError, ConnectionResetError) as exc:
                reason = (
                    "connection refused"
                    if isinstance(exc, ConnectionRefusedError)
                    else ("connection reset")
                )
            except TimeoutError:
                if reason:  # refused until the time was up
                    raise OSError(
                        f"no scheduler at {address} after {timeout:g} s ({reason})"
                    ) from None
                raise TimeoutError(
                    f"the scheduler at {address} did not answer within {timeout:g} s"
                ) from None
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise OSError(f"no scheduler at {address} after {timeout:g} s ({reason})")
            await anyio.sleep(min(pause, remaining))
            pause = min(pause * 2, MAX_PAUSE)

    def _resumable(self) -> list[str]:
        """Keys to resume: futures held whose submission left the client."""
        core = self._core
        with core.lock:
            queued = set()
            for item in core._outgoing:
                if type(item) is m.TaskSpec:
                    queued.add(item.key)
                elif type(item) is m.UpdateGraph:
                    queued.update(spec.key for spec in item.tasks)
            return [key for key in core.futures if key not in queued]

    async def reconnect(self) -> Connection | None:
        """Try to reach the scheduler again; None when closing, out of time or refused by
        the scheduler (every pending future then fails with `SchedulerLostError`, whose
        message says how long it tried and the last cause; see `comm.liveness.reconnect`
        for what is retried)."""
        core = self._core
        assert core._closing is not None
        closing = core._closing
        connection: Connection | None = None
        failure: ReconnectFailed | None = None
        async with anyio.create_task_group() as tg:

            async def attempt() -> None:
                nonlocal connection, failure
                try:
                    connection = await reconnect(
                        partial(self.open, resume=True),
                        within=core.reconnect_timeout,
                        what=f"client {core.client_id}",
                        logger=logger,
                    )
                except ReconnectFailed as exc:
                    failure = exc
                tg.cancel_scope.cancel()

            async def until_closing() -> None:
                await closing.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(attempt)
            tg.start_soon(until_closing)
        if connection is not None:
            if closing.is_set():
                with anyio.CancelScope(shield=True):
                    await connection.aclose()
                return None
            core.status = "running"
            logger.log(core.loss_log_level, "client %s: reconnected", core.client_id)
            return connection
        if not closing.is_set() and failure is not None:
            core._fail_pending(
                f"the client lost the scheduler at {core.address} and could not reach it "
                f"again: {failure}",
                lost=True,
            )
        return None

    def keep_functions(self, functions: dict[str, Serialized]) -> None:
        """Remember sent function payloads that are kept (`is_kept_function`), the newest
        `FUNCTIONS_KEPT` (call under the core's lock)."""
        kept = self._function_payloads
        kept.update((token, p) for token, p in functions.items() if is_kept_function(p))
        while len(kept) > FUNCTIONS_KEPT:
            kept.popitem(last=False)

    def on_resumed(self, msg: m.ClientResumed) -> None:
        """Handle `ClientResumed`: send again what the scheduler lacks (see the module
        docstring) and end the resume."""
        core = self._core
        unknown, self.unknown = self.unknown, []
        if msg.known:
            # The scheduler kept this client, yet never saw these submissions: they were
            # in transit when the connection broke. Submit them again.
            self._submit_again([fs for fs, _ in unknown])
        else:
            self._resumed_afresh()
            for fs, error in unknown:
                core.transition(fs, fs.set_error, error)
        if core.output.loggers:
            with core.lock:
                core._outgoing.insert(0, m.ForwardOutput(True))
        if self.resuming is not None:
            self.resuming.set()

    def _resumed_afresh(self) -> None:
        """The scheduler forgot this client: define again the functions of the tasks
        still queued; a task whose function payload is no longer kept fails."""
        core = self._core
        lost = []
        with core.lock:
            core._functions_sent.clear()
            kept = []
            for item in core._outgoing:
                if type(item) is m.TaskSpec:
                    token = item.function
                    payload = core._pending_functions.get(token)
                    if payload is None:
                        payload = self._function_payloads.get(token)
                    if payload is None:
                        lost.append(item.key)
                        continue
                    core._pending_functions[token] = payload
                    if is_kept_function(payload):
                        core._functions_sent.add(token)
                kept.append(item)
            core._outgoing = kept
        for key in lost:
            fs = core.futures.get(key)
            if fs is not None and fs.status == PENDING:
                error = SchedulerLostError(
                    f"task {key!r} was submitted while the client was disconnected and the "
                    "scheduler forgot its function; submit it again"
                )
                core.transition(fs, fs.set_lost, error_info_for(error))

    def _submit_again(self, states: list[FutureState]) -> None:
        """Queue the submissions of `states` first, with their functions' definitions."""
        core = self._core
        specs = []
        missing = []
        with core.lock:
            for fs in states:
                assert fs.spec is not None
                payload = fs.function_payload or self._function_payloads.get(fs.spec.function)
                if payload is None:
                    missing.append(fs)
                    continue
                core._pending_functions[fs.spec.function] = payload
                specs.append(fs.spec)
            core._outgoing[:0] = specs
        for fs in missing:
            error = SchedulerLostError(
                f"task {fs.key!r} was lost with the connection to the scheduler and its "
                "function is no longer kept; submit it again"
            )
            core.transition(fs, fs.set_lost, error_info_for(error))
