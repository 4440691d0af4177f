"""`Worker`: the actor that runs tasks, hosts actors and serves data to peers.

A thin shell around `WorkerState`: it feeds the state messages from the scheduler,
outcomes from the executor and results of fetches, and carries out what the state asks
for. Everything it runs — task threads, actor threads, fetches, deadlines, its own
client — is a child of the nursery `serve` owns.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import uuid
from collections.abc import Callable, MutableMapping
from functools import partial
from typing import Any

import psutil
import trio

from .._ipython import EmbeddedKernel
from .._logbuffer import LogBuffer
from .._public import publish
from .._run_function import run_function
from .._versions import local_versions
from ..comm import handshake
from ..comm.address import format_address, parse_address, parse_host_port
from ..comm.admission import HandshakeGate
from ..comm.batched import BatchedSender
from ..comm.connection import Connection, ConnectionClosed
from ..comm.liveness import RECONNECT_TIMEOUT, SCHEDULER_TIMEOUT, SilenceWatch, reconnect
from ..comm.routes import local_host_towards, reachable_address
from ..comm.rpc import PeerPool, PeerUnavailable
from ..comm.streams import ByteStream, StreamClosed
from ..comm.transports import connect, describe, is_inproc, serve, unique_inproc_address
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.failures import error_info
from ..protocol.serialize import dumps, loads, sizeof
from ..security import Security
from ..sizes import format_bytes
from . import memory, output
from .actor_host import ActorHost
from .executor import RESCHEDULED, Job, Outcome, ThreadExecutor, run_async_job
from .inspection import call_stacks, task_queue
from .lent_client import ClientFactory, TaskClient
from .memory import MemoryMonitor, MemoryThresholds
from .profiling import Sampler
from .spill import SpillBuffer, spill_directory
from .state import Execute, Fetch, ForgetActor, Interrupt, Rejoin, WorkerState
from .uploads import UploadedFiles

logger = logging.getLogger("trident.worker")

CONNECT_TIMEOUT = 10.0
#: Seconds between heartbeats to the scheduler.
HEARTBEAT_INTERVAL = 1.0
#: Seconds between sends of captured task output while tasks run.
OUTPUT_INTERVAL = 0.1
#: Seconds between two readings of the process's memory (workers with a memory limit).
MEMORY_CHECK_INTERVAL = 0.1


class _FunctionLoadError:
    """Stands in for a function that could not be unpickled; calling it re-raises."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


class _Readiness:
    """Passes a service's readiness on and remembers whether it was reported."""

    def __init__(self, task_status: trio.TaskStatus[None]):
        self._task_status = task_status
        self.reported = False

    def started(self, value: None = None) -> None:
        self.reported = True
        self._task_status.started(value)


def _actor_constructor(cls: Any, restarts: int) -> Callable[..., Any]:
    """Build an actor instance; a restart uses ``cls.on_restart`` when the class has one."""
    constructor: Callable[..., Any] = cls
    if restarts > 0 and callable(getattr(cls, "on_restart", None)):
        constructor = cls.on_restart
    return constructor


class Worker:
    """Runs tasks and hosts actors for the scheduler at `scheduler_address`.

    Arguments:
        scheduler_address: where the scheduler listens.
        nthreads: threads for sync task functions (also the number of task slots).
        name: a human-friendly name (defaults to the listen address).
        listen_address: where to listen for peers; defaults to an in-process address for
            in-process schedulers, else a free port on the interface that routes to the
            scheduler (``tls://`` when `security` has a certificate).
        contact_address: the address advertised to the scheduler and peers, for
            listeners they cannot reach directly (NAT, port forwarding). Defaults to the
            bound listen address, with an unspecified host (``0.0.0.0``) replaced by the
            interface that routes to the scheduler.
        memory_limit: bytes this worker should stay under (reported to the scheduler).
        resources: abstract resources this worker offers, e.g. ``{"GPU": 1}``.
        token: the cluster token, when the scheduler requires one (defaults to
            ``security.token``).
        security: the cluster's `Security`, for its token and TLS certificates.
        heartbeat_interval: seconds between heartbeats (load and memory) to the
            scheduler.
        scheduler_timeout: seconds the scheduler may stay silent before the worker
            treats the connection as lost.
        reconnect_timeout: seconds the worker keeps trying to reach a lost scheduler
            (keeping the results it holds, which it reports when it registers again);
            then it stops, with `lost_scheduler` set.
        memory_target_fraction: results beyond this fraction of `memory_limit` are
            spilled to disk (see `trident.worker.memory`; None turns a threshold off).
        memory_spill_fraction: when the process uses more, results are spilled until
            it is back under the target.
        memory_pause_fraction: when the process uses more, no new task starts.
        local_directory: where spilled results go (default: a fresh directory under
            the system's temporary directory, removed when the worker stops).
        client_factory: builds the client this worker lends to its tasks and actors
            (`get_client()`); None lends none (see `trident.worker.lent_client`).

    Run it with ``await nursery.start(worker.serve)``; it stops when cancelled or when
    the scheduler stays out of reach for `reconnect_timeout` seconds.
    """

    def __init__(
        self,
        scheduler_address: str,
        *,
        nthreads: int = 1,
        name: str | None = None,
        listen_address: str | None = None,
        memory_limit: int = 0,
        resources: dict[str, float] | None = None,
        token: str | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        security: Security | None = None,
        contact_address: str | None = None,
        scheduler_timeout: float = SCHEDULER_TIMEOUT,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        memory_target_fraction: float | None = memory.TARGET,
        memory_spill_fraction: float | None = memory.SPILL,
        memory_pause_fraction: float | None = memory.PAUSE,
        local_directory: str | None = None,
        client_factory: ClientFactory | None = None,
    ):
        self.scheduler_address = scheduler_address
        self.heartbeat_interval = heartbeat_interval
        self.scheduler_timeout = scheduler_timeout
        self.reconnect_timeout = reconnect_timeout
        #: set when the worker stopped because the scheduler stayed out of reach
        self.lost_scheduler = False
        #: the scheduler told this worker to stop (`CloseWorker`): no reconnecting
        self._closing = False
        self.nthreads = max(1, int(nthreads))
        self.name = name
        self.memory_limit = int(memory_limit)
        self.memory_monitor = MemoryMonitor(
            self.memory_limit,
            MemoryThresholds(memory_target_fraction, memory_spill_fraction, memory_pause_fraction),
        )
        self._local_directory = local_directory
        self._spill: SpillBuffer | None = None
        self.resources = dict(resources or {})
        security = security or Security()
        self._token = token if token is not None else security.token
        self._security = security
        if listen_address is None and is_inproc(scheduler_address):
            listen_address = unique_inproc_address("worker")
        self._listen_address = listen_address
        self._contact_address = contact_address
        self._client_ssl = security.client_ssl_context() if security.tls else None
        self.address = ""
        self.state: WorkerState | None = None
        #: the client tasks and actors on this worker use (`get_client()`)
        self.client: TaskClient | None = None
        self._client_factory = client_factory
        self.actors = ActorHost(self)
        self._functions: dict[str, Callable[..., Any]] = {}
        self._async_functions: set[str] = set()
        self._jobs: dict[int, Job] = {}
        self._deadlines: dict[int, trio.CancelScope] = {}
        self._sender: BatchedSender | None = None
        self._executor: ThreadExecutor | None = None
        self._nursery: trio.Nursery | None = None
        self._peers: PeerPool | None = None
        self._stopped = trio.Event()
        self._gate = HandshakeGate("worker")
        #: the worker's recent log records (`Client.get_worker_logs`)
        self.logs = LogBuffer(self)
        #: where task output goes while the scheduler asks for it, else None
        self._output: output.OutputCollector | None = None
        #: files uploaded with `Client.upload_file`
        self.uploads = UploadedFiles()
        #: the IPython kernel of `Client.start_ipython_workers`, once started
        self.ipython = EmbeddedKernel()
        #: samples the stacks of running tasks (`Client.profile`)
        self.profiler = Sampler(self._jobs)
        #: the thread of the worker's event loop (set once serving)
        self.loop_thread: threading.Thread | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        #: run id -> the event a seceded task's thread waits on to rejoin
        self._rejoin_waiters: dict[int, threading.Event] = {}
        #: scheduler messages the actor handles itself; True from a handler stops the worker
        self._own_messages: dict[type, Callable[[Any], bool]] = {
            m.CaptureOutput: self._on_capture_output,
            m.StoreFile: self._on_store_file,
            m.AcquireReplicas: self._on_acquire_replicas,
            m.CloseWorker: self._on_close_worker,
        }

    def __repr__(self) -> str:
        return f"<Worker {self.address or 'not started'} nthreads={self.nthreads}>"

    @property
    def data(self) -> MutableMapping[str, Any]:
        """The values this worker holds, by key (a `SpillBuffer` with a memory limit)."""
        return self.state.data if self.state is not None else {}

    # --- lifecycle -----------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Register with the scheduler and work until cancelled or the scheduler leaves."""
        self.logs.claim_current_context()
        self.logs.attach("trident")
        try:
            await self._serve(task_status)
        finally:
            self.logs.detach()
            self.uploads.close()
            self.ipython.stop()
            if self._output is not None:
                self._output = None
                output.uninstall()

    async def _serve(self, task_status: trio.TaskStatus[Worker]) -> None:
        self.loop_thread = threading.current_thread()
        self._trio_token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            listen = self._listen_address or await self._default_listen_address()
            ssl_context = (
                self._security.server_ssl_context() if listen.startswith("tls://") else None
            )
            bound = await nursery.start(
                partial(serve, ssl_context=ssl_context), listen, self._serve_peer
            )
            self.address = self._contact_address or await reachable_address(
                bound, towards=self._scheduler_host()
            )
            if self.name is None:
                self.name = self.address
            target = self.memory_monitor.target_bytes
            if target is not None:
                self._spill = SpillBuffer(spill_directory(self._local_directory), target)
            state = self.state = WorkerState(
                self.address, self.nthreads, self.resources, data=self._spill
            )
            self._peers = PeerPool(
                nursery,
                role="peer",
                name=self.name,
                token=self._token,
                ssl_context=self._client_ssl,
            )
            self._executor = ThreadExecutor(self.nthreads, self._on_outcomes, self)
            await nursery.start(self._executor.run)
            await nursery.start(self.actors.run)
            nursery.start_soon(self.profiler.run)
            connection = await self._connect_to_scheduler()
            try:
                welcome = await self._register(connection)
                logger.info(
                    "worker %s: registered with %s (%d threads)",
                    self.address,
                    self.scheduler_address,
                    self.nthreads,
                )
                # Tasks may use the worker's client at once (get_client, actor handles),
                # so it is connected before the first task is read.
                if self._client_factory is not None:
                    security = self._security.with_token(self._token)
                    self.client = self._client_factory(self, security, self._client_ssl)
                    await nursery.start(self._serve_client, self.client)
                task_status.started(self)
                nursery.start_soon(self._send_heartbeats)
                if self.memory_limit:
                    nursery.start_soon(self._watch_memory)
                while True:
                    await self._session(connection, welcome)
                    if self._closing:
                        return
                    with trio.CancelScope(shield=True):
                        await connection.aclose()
                    state.scheduler_lost()
                    self._flush()
                    reconnected = await reconnect(
                        self._connect_and_register,
                        within=self.reconnect_timeout,
                        what=f"worker {self.address}",
                        logger=logger,
                    )
                    if reconnected is None:
                        self.lost_scheduler = True
                        return
                    connection, welcome = reconnected
                    logger.info("worker %s: registered again", self.address)
            finally:
                self._stopped.set()
                self._release_rejoin_waiters()
                self._peers.close()
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await connection.aclose()
                if self._spill is not None:
                    self._spill.close()

    async def _register(self, connection: Connection) -> list[Any]:
        """Register on a fresh connection; return the messages that came with the welcome.

        Raises `ProtocolError` if the scheduler answers anything but `WorkerWelcome`.
        """
        assert self.state is not None and self._nursery is not None
        sender = self._sender = BatchedSender(connection)
        self._nursery.start_soon(sender.run)
        sender.send(m.RegisterWorker(self.info(), self.state.keys_in_memory()))
        with trio.fail_after(CONNECT_TIMEOUT):
            welcome = await connection.receive()
        if not welcome or not isinstance(welcome[0], m.WorkerWelcome):
            raise ProtocolError(f"expected WorkerWelcome, got {welcome!r}")
        return welcome[1:]

    async def _connect_and_register(self) -> tuple[Connection, list[Any]]:
        connection = await self._connect_to_scheduler()
        try:
            return connection, await self._register(connection)
        except BaseException:
            with trio.CancelScope(shield=True):
                await connection.aclose()
            raise

    async def _session(self, connection: Connection, first: list[Any]) -> None:
        """Serve the scheduler on `connection` until it is lost: broken, or silent for
        `scheduler_timeout` seconds."""
        watch = SilenceWatch(self.scheduler_timeout)
        async with trio.open_nursery() as nursery:

            async def watch_silence() -> None:
                await watch.wait()
                logger.warning(
                    "worker %s: the scheduler sent nothing for %g s",
                    self.address,
                    watch.timeout,
                )
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_silence)
            await self._receive_from_scheduler(connection, first, watch)
            nursery.cancel_scope.cancel()

    async def _serve_client(
        self, client: TaskClient, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the worker's own client; its failure is logged, never fatal to the worker.

        Reports readiness once the client is connected, or once it failed to connect.
        """
        readiness = _Readiness(task_status)
        try:
            await client.serve(task_status=readiness)
        except Exception:
            logger.exception("worker %s: its client stopped", self.address)
        if not readiness.reported:
            task_status.started()

    def _scheduler_host(self) -> str | None:
        """The scheduler's host; None for an in-process scheduler."""
        scheme, location = parse_address(self.scheduler_address)
        return None if scheme == "inproc" else parse_host_port(location)[0]

    async def _default_listen_address(self) -> str:
        scheme = "tls" if self._security.tls_cert is not None else "tcp"
        host = await local_host_towards(self._scheduler_host() or "127.0.0.1")
        return format_address(scheme, host, 0)

    def info(self) -> m.WorkerInfo:
        return m.WorkerInfo(
            self.address,
            self.name or self.address,
            self.nthreads,
            self.memory_limit,
            self.resources,
        )

    async def _connect_to_scheduler(self) -> Connection:
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await connect(self.scheduler_address, ssl_context=self._client_ssl)
            connection = Connection(stream, peer=self.scheduler_address)
            await handshake.offer(
                connection, role="worker", name=self.name or self.address, token=self._token
            )
        return connection

    async def _receive_from_scheduler(
        self, connection: Connection, first: list[Any], watch: SilenceWatch
    ) -> None:
        assert self.state is not None
        handle = self.state.handle_scheduler_message
        messages = first
        try:
            while True:
                watch.heard()
                for msg in messages:
                    kind = type(msg)
                    if kind is m.DefineFunction:
                        self._load_function(msg)
                    elif kind in self._own_messages:
                        if self._own_messages[kind](msg):
                            return
                        continue
                    handle(msg)
                self._flush()
                messages = await connection.receive()
        except ConnectionClosed:
            logger.info("worker %s: the scheduler closed the connection", self.address)
        except (StreamClosed, ProtocolError) as exc:
            # A scheduler that stops mid-packet (its cluster closing) is gone all the same.
            logger.warning("worker %s: lost the scheduler: %s", self.address, exc)

    async def _send_heartbeats(self) -> None:
        process = psutil.Process()
        process.cpu_percent(None)
        while True:
            self._heartbeat(process)
            await trio.sleep(self.heartbeat_interval)

    def _heartbeat(self, process: psutil.Process) -> None:
        assert self.state is not None and self._sender is not None
        executing, ready, stored = self.state.load()
        try:
            memory = process.memory_info().rss
            cpu = process.cpu_percent(None)
        except psutil.Error:
            memory, cpu = 0, 0.0
        spilled = self._spill.spilled_bytes if self._spill is not None else 0
        self._sender.send(
            m.WorkerHeartbeat(memory, self.memory_limit, cpu, executing, ready, stored, spilled)
        )

    # --- administration: uploads, replicas, retirement ------------------------------

    def _on_store_file(self, msg: m.StoreFile) -> bool:
        """Store and import an uploaded file; tell the scheduler how it went."""
        error = None
        try:
            self.uploads.store(msg.filename, msg.data, load=msg.load)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("worker %s: uploaded %s failed: %s", self.address, msg.filename, error)
        if msg.upload and self._sender is not None:
            self._sender.send(m.FileStored(msg.upload, error))
        return False

    def _on_acquire_replicas(self, msg: m.AcquireReplicas) -> bool:
        assert self._nursery is not None
        self._nursery.start_soon(self._acquire_replicas, msg)
        return False

    async def _acquire_replicas(self, msg: m.AcquireReplicas) -> None:
        """Fetch a copy of each key from its holders (in order) and keep it."""
        assert self.state is not None and self._sender is not None and self._peers is not None
        peers = self._peers
        values: dict[str, Any] = {}
        remaining = {key: list(holders) for key, holders in msg.who_has.items()}
        for key in list(remaining):
            if key in self.state.data:
                values[key] = self.state.data[key]
                del remaining[key]
        missing: list[str] = []
        while remaining:
            by_peer: dict[str, list[str]] = {}
            for key, holders in list(remaining.items()):
                holders = [h for h in holders if h != self.address]
                if not holders:
                    missing.append(key)
                    del remaining[key]
                    continue
                remaining[key] = holders
                by_peer.setdefault(holders[0], []).append(key)

            async def fetch(peer: str, keys: list[str]) -> None:
                try:
                    reply = await peers.request(peer, lambda rid: m.GetData(rid, keys))
                    found = {key: loads(payload) for key, payload in reply.data.items()}
                except Exception as exc:
                    logger.info("worker %s: copying from %s failed: %r", self.address, peer, exc)
                    found = {}
                values.update(found)
                for key in keys:
                    if key in found:
                        del remaining[key]
                    else:
                        remaining[key].remove(peer)

            async with trio.open_nursery() as fetching:
                for peer, keys in by_peer.items():
                    fetching.start_soon(fetch, peer, keys)
        nbytes = {key: sizeof(value) for key, value in values.items()}
        self.state.put_data(values, nbytes)
        self._sender.send(m.ReplicasAcquired(msg.operation, nbytes, missing))
        self._flush()

    def _on_close_worker(self, msg: m.CloseWorker) -> bool:
        logger.info("worker %s: closing: %s", self.address, msg.reason)
        self._closing = True
        return True

    async def _watch_memory(self) -> None:
        """Spill and pause as the process's memory grows (see `trident.worker.memory`)."""
        assert self.state is not None
        process = psutil.Process()
        state = self.state
        while True:
            await trio.sleep(MEMORY_CHECK_INTERVAL)
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            action = self.memory_monitor.assess(rss)
            if action.spill_to is not None and self._spill is not None:
                spilled = await trio.to_thread.run_sync(
                    self._spill_until, self._spill, process, action.spill_to
                )
                if spilled:
                    logger.info(
                        "worker %s: memory at %s of %s: spilled %s to disk",
                        self.address,
                        format_bytes(rss),
                        format_bytes(self.memory_limit),
                        format_bytes(spilled),
                    )
                    action = self.memory_monitor.assess(process.memory_info().rss)
            if action.paused != state.paused:
                state.paused = action.paused
                logger.warning(
                    "worker %s: %s (process memory %s of its %s limit)",
                    self.address,
                    "paused: no new task starts" if action.paused else "resumed",
                    format_bytes(rss),
                    format_bytes(self.memory_limit),
                )
                if not action.paused:
                    self._flush()

    @staticmethod
    def _spill_until(spill: SpillBuffer, process: psutil.Process, limit: int) -> int:
        """Spill results until the process uses at most `limit` bytes or none is left
        in memory (runs in a thread); return the bytes spilled."""
        total = 0
        while process.memory_info().rss > limit:
            freed = spill.evict()
            if not freed:
                break
            total += freed
        return total

    # --- task output ------------------------------------------------------------------

    def _on_capture_output(self, msg: m.CaptureOutput) -> bool:
        self._capture_output(msg.enabled)
        return False

    def _capture_output(self, enabled: bool) -> None:
        if enabled and self._output is None:
            output.install()
            collector = self._output = output.OutputCollector()
            assert self._nursery is not None
            self._nursery.start_soon(self._send_output_while, collector)
        elif not enabled and self._output is not None:
            self._send_output()
            self._output = None
            output.uninstall()

    async def _send_output_while(self, collector: output.OutputCollector) -> None:
        """Send captured output every `OUTPUT_INTERVAL` until capturing stops."""
        while self._output is collector:
            self._send_output()
            await trio.sleep(OUTPUT_INTERVAL)

    def _send_output(self) -> None:
        if self._output is None or self._sender is None:
            return
        entries = self._output.drain()
        if entries:
            self._sender.send(m.TaskOutput(self.address, entries))

    def _load_function(self, msg: m.DefineFunction) -> None:
        try:
            function = loads(msg.function)
        except Exception as exc:
            function = _FunctionLoadError(exc)
        self._functions[msg.token] = function
        if inspect.iscoroutinefunction(function):
            self._async_functions.add(msg.token)

    # --- carrying out the state's decisions -------------------------------------------------

    def _flush(self) -> None:
        assert self.state is not None and self._sender is not None
        out, instructions = self.state.flush()
        if out:
            self._sender.send_now(out)
        for instruction in instructions:
            if isinstance(instruction, Execute):
                self._execute(instruction.key, instruction.run_id)
            elif isinstance(instruction, Fetch):
                assert self._nursery is not None
                self._nursery.start_soon(self._fetch, instruction.peer, instruction.keys)
            elif isinstance(instruction, Interrupt):
                self._interrupt(instruction.key, instruction.run_id)
            elif isinstance(instruction, ForgetActor):
                self.actors.forget(instruction.key)
            elif isinstance(instruction, Rejoin):
                self._rejoined(instruction.run_id)

    def _execute(self, key: str, run_id: int) -> None:
        assert self.state is not None and self._executor is not None
        assert self._nursery is not None
        ts = self.state.tasks[key]
        assert ts.args is not None
        function = self._functions.get(ts.function)
        if function is None:
            function = _FunctionLoadError(
                RuntimeError(f"worker {self.address} does not know function {ts.function!r}")
            )
        inline = ts.inline_result
        if ts.actor is not None:
            function = _actor_constructor(function, ts.restarts)
            inline = False  # the result is the actor's location, made when it is hosted
        job = Job(
            key,
            run_id,
            function,
            ts.args,
            self.state.data,
            inline,
            self._output,
            actor=ts.actor is not None,
        )
        self._jobs[run_id] = job
        if ts.timeout is not None:
            scope = self._deadlines[run_id] = trio.CancelScope()
            self._nursery.start_soon(self._enforce_deadline, key, run_id, ts.timeout, scope)
        if ts.function in self._async_functions and ts.actor is None:
            self._nursery.start_soon(self._run_async, job)
        else:
            self._executor.submit(job)

    async def _enforce_deadline(
        self, key: str, run_id: int, timeout: float, scope: trio.CancelScope
    ) -> None:
        with scope:
            await trio.sleep(timeout)
            assert self.state is not None
            error = TimeoutError(f"task {key!r} did not finish within its {timeout} s deadline")
            self.state.task_timed_out(run_id, error_info(error, self.address))
            if self.client is not None:
                self.client.task_ended(key, succeeded=False)
            self._flush()

    async def _run_async(self, job: Job) -> None:
        outcome = await run_async_job(job, self)
        self._on_outcomes([outcome])

    def _interrupt(self, key: str, run_id: int) -> None:
        job = self._jobs.get(run_id)
        if job is not None:
            job.cancelled = True
            if job.scope is not None:
                job.scope.cancel()
        if self.client is not None:
            self.client.task_ended(key, succeeded=False)

    def _on_outcomes(self, outcomes: list[Outcome]) -> None:
        state = self.state
        if state is None or self._stopped.is_set():
            return
        self._send_output()  # before the tasks are reported finished
        for outcome in outcomes:
            run_id = outcome.run_id
            self._jobs.pop(run_id, None)
            deadline = self._deadlines.pop(run_id, None)
            if deadline is not None:
                deadline.cancel()
            if outcome.skipped:
                state.task_skipped(run_id)
                continue
            if outcome.error is not None:
                if outcome.error is RESCHEDULED:
                    state.task_rescheduled(run_id)
                else:
                    state.task_failed(run_id, outcome.error, start=outcome.start, stop=outcome.stop)
                if self.client is not None:
                    self.client.task_ended(outcome.key, succeeded=False)
                continue
            ts = state.executing.get(run_id)
            if ts is not None and ts.actor is not None and state.tasks.get(ts.key) is ts:
                self._host_actor(outcome, ts.actor, ts.restarts, ts.inline_result)
            state.task_finished(
                run_id,
                outcome.value,
                nbytes=outcome.nbytes,
                type_name=outcome.type_name,
                start=outcome.start,
                stop=outcome.stop,
                payload=outcome.payload,
            )
            if self.client is not None:
                self.client.task_ended(outcome.key, succeeded=True)
        self._flush()

    # --- secession (see `secession`) ------------------------------------------------------

    def secede_run(self, job: Job) -> None:
        """The task of `job` gives its slot up; call from its thread or the loop."""
        if threading.current_thread() is self.loop_thread:
            self._secede_now(job.run_id, threaded=False)
        else:
            self._call_in_loop(self._secede_now, job.run_id, True)

    def _secede_now(self, run_id: int, threaded: bool) -> None:
        if self.state is None or self._stopped.is_set():
            return
        self.state.secede(run_id)
        if threaded:
            # The seceded thread leaves the pool when its task ends, unless it rejoins
            # (then `_rejoined` retires one thread): the pool keeps its size either way.
            assert self._executor is not None
            self._executor.add_thread()
        self._flush()

    def rejoin_run(self, job: Job) -> None:
        """The task of `job` wants a slot back: from its thread, wait until it has one;
        from the loop (an async task), ask and return."""
        if threading.current_thread() is self.loop_thread:
            job.seceded = False
            if self.state is not None and not self._stopped.is_set():
                self.state.rejoin(job.run_id)
                self._flush()
            return
        granted = threading.Event()
        if self._call_in_loop(self._rejoin_now, job.run_id, granted):
            granted.wait()

    def _rejoin_now(self, run_id: int, granted: threading.Event) -> None:
        if self.state is None or self._stopped.is_set():
            granted.set()
            return
        self._rejoin_waiters[run_id] = granted
        self.state.rejoin(run_id)
        self._flush()

    def _rejoined(self, run_id: int) -> None:
        """The state gave run `run_id` a slot back."""
        job = self._jobs.get(run_id)
        if job is not None:
            job.seceded = False
        granted = self._rejoin_waiters.pop(run_id, None)
        if granted is not None:
            assert self._executor is not None
            self._executor.retire_thread()
            granted.set()

    def _release_rejoin_waiters(self) -> None:
        """The worker stops: let waiting threads finish their tasks (results are dropped)."""
        waiters, self._rejoin_waiters = self._rejoin_waiters, {}
        for granted in waiters.values():
            granted.set()

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` soon in the worker's loop; False once the loop is gone."""
        if self._trio_token is None:
            return False
        try:
            self._trio_token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            return False
        return True

    def _host_actor(
        self, outcome: Outcome, options: m.ActorOptions, restarts: int, inline: bool
    ) -> None:
        """Host a freshly built actor; its result becomes the actor's location."""
        location = self.actors.host(outcome.key, outcome.value, options, restarts)
        outcome.value = location
        outcome.type_name = "Actor"
        outcome.nbytes = sizeof(location)
        outcome.payload = dumps(location) if inline else None

    async def _fetch(self, peer: str, keys: list[str]) -> None:
        assert self.state is not None and self._peers is not None
        try:
            reply = await self._peers.request(peer, lambda rid: m.GetData(rid, keys))
            if not isinstance(reply, m.DataReply):
                raise ProtocolError(f"expected DataReply from {peer}, got {type(reply).__name__}")
            values = {key: loads(payload) for key, payload in reply.data.items()}
        except (PeerUnavailable, ProtocolError) as exc:
            logger.info(
                "worker %s: fetching %d keys from %s failed: %s",
                self.address,
                len(keys),
                peer,
                exc,
            )
            self.state.fetch_failed(peer, keys)
        except Exception as exc:
            logger.warning(
                "worker %s: data from %s could not be loaded: %r", self.address, peer, exc
            )
            self.state.fetch_failed(peer, keys)
        else:
            nbytes = {key: sizeof(value) for key, value in values.items()}
            self.state.fetch_done(peer, keys, values, nbytes)
        self._flush()

    # --- peers --------------------------------------------------------------------------

    async def _serve_peer(self, stream: ByteStream) -> None:
        """Answer data requests, log requests and actor calls from clients and other workers."""
        self.logs.claim_current_context()
        connection = Connection(stream, peer=describe(stream))
        try:
            with self._gate.admit() as admitted:
                await handshake.accept(connection, token=self._token, server_id=self.address)
        except (ProtocolError, handshake.AuthenticationError, trio.TooSlowError) as exc:
            logger.warning("worker %s: refused peer %s: %s", self.address, connection.peer, exc)
            return
        except (ConnectionClosed, StreamClosed):
            return
        if admitted.cancelled_caught:
            return  # evicted to make room for newer connections (the gate logs it)
        sender = BatchedSender(connection)
        origin = id(connection)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender.run)
            try:
                while True:
                    for msg in await connection.receive():
                        kind = type(msg)
                        if kind is m.ActorCall:
                            self.actors.call(origin, msg, sender)
                        elif kind is m.ActorCancel:
                            self.actors.cancel(origin, msg.request_id)
                        elif kind is m.GetData:
                            sender.send(self._get_data(msg))
                        elif kind is m.PutData:
                            sender.send(self._put_data(msg))
                        elif kind is m.LogsRequest:
                            records = [list(record) for record in self.logs.tail(msg.n)]
                            sender.send(m.Reply(msg.request_id, records, None))
                        elif kind is m.RunFunction:
                            nursery.start_soon(self._run_function, msg, sender)
                        elif kind in _INSPECTIONS:
                            sender.send(m.Reply(msg.request_id, self._inspect(msg), None))
                        else:
                            raise ProtocolError(f"peers may not send {kind.__name__}")
                    sender.flush_now()
            except (ConnectionClosed, StreamClosed):
                pass
            except ProtocolError as exc:
                logger.warning(
                    "worker %s: closing connection from %s: %s", self.address, connection.peer, exc
                )
            finally:
                self.actors.forget_origin(origin)
                nursery.cancel_scope.cancel()

    async def _run_function(self, call: m.RunFunction, sender: BatchedSender) -> None:
        """`Client.run`: run a client's function in the worker's loop and answer."""
        assert self._nursery is not None
        sender.send(
            await run_function(call, self, "worker", nursery=self._nursery, address=self.address)
        )

    def _inspect(self, msg: Any) -> Any:
        """Answer a question about what this worker does (`_INSPECTIONS`)."""
        assert self.state is not None
        kind = type(msg)
        if kind is m.CallStackRequest:
            return call_stacks(self._jobs, msg.keys)
        if kind is m.TaskQueueRequest:
            return task_queue(self.state)
        if kind is m.ProfileRequest:
            return self.profiler.profile(msg.key, msg.start, msg.stop)
        return local_versions(msg.packages)

    def _get_data(self, msg: m.GetData) -> m.DataReply:
        data = self.data
        found = {}
        missing = []
        for key in msg.keys:
            if key not in data:
                missing.append(key)
                continue
            try:
                found[key] = dumps(data[key])
            except Exception as exc:
                logger.error("worker %s: cannot serialize %r: %r", self.address, key, exc)
                missing.append(key)
        return m.DataReply(msg.request_id, found, missing)

    def _put_data(self, msg: m.PutData) -> m.Reply:
        assert self.state is not None
        try:
            values = {key: loads(payload) for key, payload in msg.data.items()}
        except Exception as exc:
            return m.Reply(msg.request_id, None, f"cannot load scattered data: {exc!r}")
        nbytes = {key: sizeof(value) for key, value in values.items()}
        self.state.put_data(values, nbytes)
        self._flush()
        return m.Reply(msg.request_id, nbytes, None)


#: Questions peers may ask a worker about itself, answered by `Worker._inspect`.
_INSPECTIONS = frozenset(
    {m.CallStackRequest, m.TaskQueueRequest, m.ProfileRequest, m.VersionsRequest}
)


def default_worker_name() -> str:
    return f"worker-{os.getpid()}-{uuid.uuid4().hex[:6]}"


__all__ = ["Worker", "error_info"]


publish(globals())
