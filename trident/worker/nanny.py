"""`Nanny`: the actor that keeps one worker process alive and says why it died.

A nanny connects to the scheduler itself (handshake role ``"nanny"``), then starts
``python -m trident.deploy.worker_process`` and watches it:

- when the process dies on its own, the nanny tells the scheduler why (`WorkerDied`:
  exit code or signal, out of memory, the last lines of its stderr) and starts a new
  one after a back-off that doubles with each quick death;
- when the process uses more than `memory_terminate_fraction` of its memory limit, the
  nanny terminates it (and reports that as out of memory);
- on `RestartWorker` from the scheduler (`Client.restart`) it replaces the process at
  once and reports the fresh worker (`WorkerStarted`);
- on `CloseWorker` (`Client.retire_workers(close_workers=True)`) it stops the worker
  and itself, without a restart;
- `RunFunction` (`Client.run(..., nanny=True)`) runs a function in the nanny's loop;
- when it loses the scheduler it keeps its worker running and tries to reconnect for
  `reconnect_timeout` seconds (the worker does the same on its own connection);
- when the nanny stops (cancelled, SIGTERM to its process, or the scheduler out of
  reach for longer than `reconnect_timeout`) the worker gets SIGTERM, then SIGKILL
  after a grace period; a worker that gave up on the scheduler itself
  (`SCHEDULER_LOST_EXIT_CODE`) is not restarted while the nanny cannot reach it
  either.

The worker process starts with its native thread pools (BLAS, OpenMP) limited to its
thread count (see `trident.worker.native_threads`).

The worker's stderr is passed through to the nanny's own stderr. ``trident up`` runs
one nanny per worker in its process; ``trident worker --nanny`` runs one.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import psutil
import trio

from .._plugins import call_hook
from .._run_function import run_function
from ..comm import handshake
from ..comm.batched import BatchedSender
from ..comm.connection import Connection, ConnectionClosed
from ..comm.liveness import ReconnectFailed, SilenceWatch, reconnect
from ..comm.streams import StreamClosed
from ..comm.transports import connect
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.failures import error_info
from ..protocol.serialize import loads
from ..security import TOKEN_ENV, Security
from ..sizes import format_bytes
from .config import WorkerConfig
from .exits import SCHEDULER_LOST_EXIT_CODE, ExitReason, describe_exit, oom_kill_count
from .native_threads import worker_environment
from .spawn import process_settings, stop_process, worker_command

logger = logging.getLogger("trident.nanny")

CONNECT_TIMEOUT = 10.0
STDERR_LINES = 20
DEATHS_KEPT = 50
#: Seconds the nanny's plugins get to tear down when it stops.
PLUGIN_TEARDOWN_TIMEOUT = 10.0
_MAX_LINE = 500


@attrs.frozen
class BackOff:
    """Delays between restarts: `first`, doubling per quick death, at most `maximum`.

    A quick death is one before the worker registered with the scheduler, within
    `stable` seconds of its start: a crash loop (a broken environment, a scheduler that
    refuses it). A worker that registered is restarted after `first` whatever killed it
    (the tasks that kill workers are stopped by `KilledWorker`), and resets the count.
    """

    first: float = 0.5
    maximum: float = 30.0
    stable: float = 60.0

    def delay(self, quick_deaths: int) -> float:
        return min(self.first * 2.0**quick_deaths, self.maximum)


class WorkerStartError(RuntimeError):
    """The first worker process exited before it registered with the scheduler."""


@attrs.define
class _Run:
    """What a nanny saw of one worker process."""

    process: trio.Process
    stderr_tail: deque[str] = attrs.Factory(lambda: deque(maxlen=STDERR_LINES))
    address: str = ""
    ready: bool = False
    memory_kill: str | None = None
    stderr_done: trio.Event = attrs.Factory(trio.Event)


class Nanny:
    """Supervises one worker process for the scheduler at `scheduler_address`.

    Arguments:
        scheduler_address: where the scheduler listens.
        config: how to start the worker (every `WorkerConfig` setting reaches the
            worker process); its timeouts are the nanny's too.
        security: the cluster's `Security` (token and TLS files); the token reaches the
            worker through ``TRIDENT_TOKEN``, never its command line.
        backoff: delays between restarts after deaths.
        memory_terminate_fraction: terminate a worker whose resident memory exceeds
            this fraction of ``config.memory_limit`` (no check without a limit, or
            when None); by default ``config.memory.terminate`` (0.95).
        memory_check_interval: seconds between memory checks.
        scheduler_timeout: seconds the scheduler may stay silent before the nanny (and
            its worker) treat the connection as lost (default: ``config``'s).
        reconnect_timeout: seconds the nanny (and its worker) keep trying to reach a
            lost scheduler before they stop (default: ``config``'s).

    Run it with ``await nursery.start(nanny.serve)``, which returns once the first
    worker registered with the scheduler; raises `WorkerStartError` if that worker
    exits first, `AuthenticationError` or `OSError` if the scheduler refuses or cannot
    be reached.
    """

    def __init__(
        self,
        scheduler_address: str,
        config: WorkerConfig | None = None,
        *,
        security: Security | None = None,
        backoff: BackOff | None = None,
        memory_terminate_fraction: float | None = None,
        memory_check_interval: float = 0.5,
        scheduler_timeout: float | None = None,
        reconnect_timeout: float | None = None,
    ):
        self.id = f"nanny-{uuid.uuid4().hex[:12]}"
        self.scheduler_address = scheduler_address
        config = config or WorkerConfig()
        if scheduler_timeout is not None:
            config = attrs.evolve(config, scheduler_timeout=scheduler_timeout)
        if reconnect_timeout is not None:
            config = attrs.evolve(config, reconnect_timeout=reconnect_timeout)
        #: how the worker is started
        self.config = config
        self.security = security or Security()
        self.backoff = backoff or BackOff()
        self.memory_terminate_fraction = (
            config.memory.terminate
            if memory_terminate_fraction is None
            else memory_terminate_fraction
        )
        self.memory_check_interval = memory_check_interval
        self.scheduler_timeout = config.scheduler_timeout
        self.reconnect_timeout = config.reconnect_timeout
        #: whether the nanny is connected to the scheduler now
        self.connected = False
        #: death reports made while disconnected, sent once connected again
        self._unsent: list[m.WorkerDied] = []
        self._connection: Connection | None = None
        #: the current worker's address and pid (empty / None between processes)
        self.worker_address = ""
        self.worker_pid: int | None = None
        #: the current worker process (None between processes)
        self.process: trio.Process | None = None
        #: the latest deaths this nanny reported, oldest first
        self.deaths: deque[m.WorkerDied] = deque(maxlen=DEATHS_KEPT)
        self._sender: BatchedSender | None = None
        self._run_scope: trio.CancelScope | None = None
        self._restart_id: int | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._oom_before = 0
        self._with_welcome: list[Any] = []
        #: nanny plugins (`Client.register_plugin`), by name
        self.plugins: dict[str, Any] = {}
        self._plugin_lock = trio.Lock()

    def __repr__(self) -> str:
        return f"<Nanny {self.id} worker={self.worker_address or 'not started'}>"

    # --- lifecycle -------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[Nanny] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, start the worker and supervise it until cancelled or the scheduler
        stays out of reach for `reconnect_timeout` seconds; the worker is stopped before
        this returns."""
        self._connection = await self._connect()
        start_error: WorkerStartError | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                self._nursery = nursery
                nursery.start_soon(self._stay_connected, nursery.cancel_scope)
                try:
                    await self._supervise(task_status)
                except WorkerStartError as exc:
                    # Raised bare below rather than inside an exception group.
                    start_error = exc
                nursery.cancel_scope.cancel()
        finally:
            with trio.move_on_after(PLUGIN_TEARDOWN_TIMEOUT, shield=True):
                await self._teardown_plugins()
            with trio.CancelScope(shield=True):
                await self._connection.aclose()
        if start_error is not None:
            raise start_error

    def close(self) -> None:
        """Stop the worker and the nanny."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    async def _connect(self) -> Connection:
        security = self.security
        ssl_context = security.client_ssl_context() if security.tls else None
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await connect(self.scheduler_address, ssl_context=ssl_context)
            connection = Connection(stream, peer=self.scheduler_address)
            try:
                name = self.config.name or self.id
                await handshake.offer(
                    connection,
                    role="nanny",
                    name=name,
                    token=security.token,
                    server_role="scheduler",
                )
                registration = m.RegisterNanny(
                    self.id, self.config.name or "", socket.gethostname(), os.getpid()
                )
                await connection.send([registration])
                welcome = await connection.receive()
                if not welcome or not isinstance(welcome[0], m.NannyWelcome):
                    got = ", ".join(type(msg).__name__ for msg in welcome)
                    raise ProtocolError(f"expected NannyWelcome, got [{got}]")
                # What came with the welcome (the plugins to set up) is handled first.
                self._with_welcome = welcome[1:]
            except BaseException:
                with trio.CancelScope(shield=True):
                    await connection.aclose()
                raise
        return connection

    async def _stay_connected(self, done: trio.CancelScope) -> None:
        """Serve the connection to the scheduler; reconnect when it is lost, and cancel
        `done` when the scheduler stays out of reach."""
        connection = self._connection
        assert connection is not None
        while True:
            self.connected = True
            sender = self._sender = BatchedSender(connection)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender.run)
                if self.worker_address and self.worker_pid is not None:
                    sender.send(m.WorkerStarted(self.worker_address, self.worker_pid, None))
                for report in self._unsent:
                    sender.send(report)
                self._unsent.clear()
                await self._receive(connection)
                nursery.cancel_scope.cancel()
            self.connected = False
            self._sender = None
            with trio.CancelScope(shield=True):
                await connection.aclose()
            try:
                reconnected = await reconnect(
                    self._connect,
                    within=self.reconnect_timeout,
                    what=f"nanny {self.id}",
                    logger=logger,
                )
            except ReconnectFailed:
                done.cancel()
                return
            logger.info("nanny %s: connected to the scheduler again", self.id)
            connection = self._connection = reconnected

    async def _receive(self, connection: Connection) -> None:
        """Handle the scheduler's messages until the connection is lost: broken, or
        silent for `scheduler_timeout` seconds."""
        watch = SilenceWatch(self.scheduler_timeout)
        async with trio.open_nursery() as nursery:

            async def watch_silence() -> None:
                await watch.wait()
                logger.warning(
                    "nanny %s: the scheduler sent nothing for %g s", self.id, watch.timeout
                )
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_silence)
            messages, self._with_welcome = self._with_welcome, []
            try:
                while True:
                    for msg in messages:
                        kind = type(msg)
                        if kind is m.Heartbeat:
                            continue
                        if kind is m.RunFunction:
                            assert self._nursery is not None
                            self._nursery.start_soon(self._run_function, msg)
                            continue
                        if kind is m.SetupPlugin or kind is m.TeardownPlugin:
                            assert self._nursery is not None
                            self._nursery.start_soon(self._plugin_request, msg)
                            continue
                        if kind is m.CloseWorker:
                            logger.info(
                                "nanny %s: closing with its worker: %s", self.id, msg.reason
                            )
                            self.close()
                            return
                        if kind is not m.RestartWorker:
                            raise ProtocolError(f"the scheduler sent a nanny {kind.__name__}")
                        logger.info("nanny %s: restarting the worker: %s", self.id, msg.reason)
                        self._restart_id = msg.restart_id
                        if self._run_scope is not None:
                            self._run_scope.cancel()
                    messages = await connection.receive()
                    watch.heard()
            except ConnectionClosed:
                logger.info("nanny %s: the scheduler closed the connection", self.id)
            except (StreamClosed, ProtocolError) as exc:
                logger.warning("nanny %s: lost the scheduler: %s", self.id, exc)
            nursery.cancel_scope.cancel()

    async def _run_function(self, call: m.RunFunction) -> None:
        """`Client.run(..., nanny=True)`: run a function here; answer the scheduler."""
        assert self._nursery is not None
        result = await run_function(
            call, self, "worker", nursery=self._nursery, address=self.worker_address
        )
        if self._sender is not None:  # else the scheduler was lost meanwhile
            self._sender.send(result)

    async def _plugin_request(self, msg: m.SetupPlugin | m.TeardownPlugin) -> None:
        """Set a nanny plugin up (tearing down the one it replaces) or tear one down, in
        the order the scheduler sent them; answer with what the hook raised."""
        error = None
        async with self._plugin_lock:
            old = self.plugins.pop(msg.name, None)
            try:
                if old is not None:
                    await call_hook(old, "teardown", nanny=self)
            except Exception as exc:
                logger.warning("nanny %s: plugin %s teardown failed: %r", self.id, msg.name, exc)
                if isinstance(msg, m.TeardownPlugin):
                    error = error_info(exc, self.worker_address or self.id)
            if isinstance(msg, m.SetupPlugin):
                try:
                    plugin = loads(msg.plugin)
                    self.plugins[msg.name] = plugin
                    await call_hook(plugin, "setup", nanny=self)
                except Exception as exc:
                    logger.warning("nanny %s: plugin %s setup failed: %r", self.id, msg.name, exc)
                    error = error_info(exc, self.worker_address or self.id)
        if msg.request and self._sender is not None:
            self._sender.send(m.PluginDone(msg.request, error))

    async def _teardown_plugins(self) -> None:
        while self.plugins:
            name, plugin = self.plugins.popitem()
            try:
                await call_hook(plugin, "teardown", nanny=self)
            except Exception:
                logger.exception("nanny %s: plugin %s teardown failed", self.id, name)

    # --- supervising ------------------------------------------------------------------

    async def _supervise(self, task_status: trio.TaskStatus[Nanny]) -> None:
        status: trio.TaskStatus[Nanny] | None = task_status

        def on_ready() -> None:
            nonlocal status
            if status is not None:
                status.started(self)
                status = None

        quick_deaths = 0
        while True:
            restart_id, self._restart_id = self._restart_id, None
            started_at = trio.current_time()
            run = None
            with trio.CancelScope() as scope:
                self._run_scope = scope
                run = await self._run_once(restart_id, on_ready)
            if run is None:
                continue  # replaced on request: no report, no back-off
            if run.process.returncode == SCHEDULER_LOST_EXIT_CODE and not self.connected:
                logger.warning(
                    "nanny %s: the worker gave up on the scheduler, which the nanny cannot "
                    "reach either: stopping",
                    self.id,
                )
                return
            exit_reason = self._exit_reason(run)
            if status is not None:
                tail = "".join(f"\n  {line}" for line in run.stderr_tail)
                raise WorkerStartError(
                    f"the worker process {exit_reason.reason} before it registered{tail}"
                )
            if run.ready or trio.current_time() - started_at >= self.backoff.stable:
                quick_deaths = 0
            delay = self.backoff.delay(quick_deaths)
            if not run.ready:
                quick_deaths += 1
            self._report_death(run, exit_reason, delay)
            with trio.CancelScope() as scope:
                self._run_scope = scope
                await trio.sleep(delay)

    def _exit_reason(self, run: _Run) -> ExitReason:
        returncode = run.process.returncode
        assert returncode is not None
        oom_after = oom_kill_count()
        return describe_exit(
            returncode,
            stderr_tail=list(run.stderr_tail),
            memory_kill=run.memory_kill,
            oom_killed=oom_after is not None and oom_after > self._oom_before,
        )

    def _report_death(self, run: _Run, exit_reason: ExitReason, delay: float) -> None:
        report = m.WorkerDied(
            run.address,
            run.process.pid,
            exit_reason.exit_code,
            exit_reason.signal,
            exit_reason.out_of_memory,
            exit_reason.reason,
            list(run.stderr_tail),
            delay,
            time.time(),
        )
        self.deaths.append(report)
        if self._sender is None:
            self._unsent.append(report)
        else:
            self._sender.send(report)
        logger.warning(
            "nanny %s: worker %s (pid %d) %s; restarting it in %.1f s",
            self.id,
            run.address or "(not registered)",
            run.process.pid,
            exit_reason.reason,
            delay,
        )

    async def _run_once(self, restart_id: int | None, on_ready: Callable[[], None]) -> _Run:
        """Run one worker process until it exits; call `on_ready` once it registered."""
        env = worker_environment(self.config.nthreads, os.environ)
        env.update(self.config.env)
        env.pop(TOKEN_ENV, None)
        if self.security.token is not None:
            env[TOKEN_ENV] = self.security.token
        self._oom_before = oom_kill_count() or 0
        report_read, report_write = os.pipe()
        try:
            process = await trio.lowlevel.open_process(
                worker_command(
                    process_settings(
                        self.scheduler_address, self.config, self.security, report_fd=report_write
                    )
                ),
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                pass_fds=(report_write,),
                # A terminal's Ctrl-C reaches the nanny only; the nanny stops the worker.
                start_new_session=True,
            )
        except BaseException:
            os.close(report_read)
            raise
        finally:
            os.close(report_write)
        run = _Run(process)
        self.worker_pid = process.pid
        self.process = process
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump_stderr, run)
                report = await _read_report(report_read)
                if report is not None and process.returncode is None:
                    run.ready = True
                    run.address = self.worker_address = str(report.get("address", ""))
                    if self._sender is not None:
                        self._sender.send(m.WorkerStarted(run.address, process.pid, restart_id))
                    if self.config.memory_limit and self.memory_terminate_fraction is not None:
                        nursery.start_soon(self._watch_memory, run, self.memory_terminate_fraction)
                    on_ready()
                await process.wait()
                with trio.move_on_after(1):
                    await run.stderr_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.worker_address = ""
            self.worker_pid = None
            self.process = None
            with trio.CancelScope(shield=True):
                await stop_process(process)
        return run

    async def _pump_stderr(self, run: _Run) -> None:
        """Pass the worker's stderr through and keep its last lines."""
        stream = run.process.stderr
        assert stream is not None
        pending = b""
        try:
            async for chunk in stream:
                sys.stderr.write(chunk.decode(errors="replace"))
                sys.stderr.flush()
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                run.stderr_tail.extend(_line(line) for line in lines)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if pending:
                run.stderr_tail.append(_line(pending))
            run.stderr_done.set()

    async def _watch_memory(self, run: _Run, fraction: float) -> None:
        """Terminate the worker when its resident memory passes `fraction` of its limit."""
        limit = self.config.memory_limit
        threshold = limit * fraction
        try:
            process = psutil.Process(run.process.pid)
            while True:
                await trio.sleep(self.memory_check_interval)
                rss = process.memory_info().rss
                if rss > threshold:
                    break
        except psutil.Error:
            return
        run.memory_kill = (
            f"the worker used {format_bytes(rss)} of its {format_bytes(limit)} memory limit "
            f"(more than {fraction:.0%}); the nanny terminated it"
        )
        logger.warning("nanny %s: %s", self.id, run.memory_kill)
        await stop_process(run.process, grace=1.0)


def _line(raw: bytes) -> str:
    return raw.decode(errors="replace").rstrip("\r")[:_MAX_LINE]


async def _read_report(fd: int) -> dict[str, Any] | None:
    """Read the worker's readiness report from its pipe; None if it closed without one."""
    data = b""
    async with trio.lowlevel.FdStream(fd) as stream:
        while chunk := await stream.receive_some(4096):
            data += chunk
    try:
        report = json.loads(data)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None
