"""`Worker`: the actor that runs tasks, hosts actors and serves data to peers.

A thin shell around `WorkerState`: it feeds the state messages from the scheduler,
outcomes from the executor and results of fetches, and carries out what the state asks
for. Everything it runs — task threads, actor threads, fetches, deadlines, its own
client — is a child of the nursery `serve` owns.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import MutableMapping
from functools import partial
from typing import Any

import psutil
import trio

from .._ipython import EmbeddedKernel
from .._keys import decode_key
from .._logbuffer import LogBuffer
from .._preload import Preloads
from .._public import publish
from ..comm.batched import BatchedSender
from ..comm.connection import Connection
from ..comm.liveness import RECONNECT_TIMEOUT, SCHEDULER_TIMEOUT, ReconnectFailed, reconnect
from ..comm.routes import reachable_address
from ..comm.rpc import PeerPool
from ..comm.transports import is_inproc, serve, unique_inproc_address
from ..protocol import messages as m
from ..protocol.failures import error_info
from ..protocol.serialize import dumps, sizeof
from ..security import Security
from . import events as ev
from . import instructions as ins
from . import memory
from .actor_host import ActorHost
from .asyncio_actors import AsyncioTaskLoop
from .config import HEARTBEAT_INTERVAL, WorkerConfig
from .context import current_task_key
from .executor import Job, Outcome, ThreadExecutor, run_async_job
from .fetch import fetch_from_peer
from .functions import FunctionCache, actor_constructor
from .lent_client import ClientFactory, TaskClient, serve_lent_client
from .memory import MemoryMonitor, MemoryThresholds
from .memory_watch import watch_memory
from .outcomes import outcome_event
from .output_forwarding import OutputForwarding
from .peers import PeerServer
from .plugins import WorkerPlugins
from .profiling import Sampler
from .scheduler_connection import SchedulerConnection, heartbeat
from .secession_bridge import SecessionBridge
from .spill import SpillBuffer, spill_directory
from .state import WorkerState
from .uploads import UploadedFiles

logger = logging.getLogger("trident.worker")

#: Seconds the worker's plugins get to tear down when it stops.
PLUGIN_TEARDOWN_TIMEOUT = 10.0


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
        preload: modules (names or ``.py`` files) to import when the worker starts;
            their ``dask_setup(worker)`` / ``trident_setup(worker)`` are called once
            it listens, before it registers (see `trident._preload`). Raises
            `PreloadError` from the constructor when one cannot be imported.
        client_factory: builds the client this worker lends to its tasks and actors
            (`get_client()`); None lends none (see `trident.worker.lent_client`).
        lifetime: seconds after which the worker asks the scheduler to retire it
            (`WorkerRetiring`: its data is moved to other workers first, then it and its
            nanny stop), as dask's ``--lifetime``; for workers in batch jobs, set it a
            little under the walltime. None: no limit.
        lifetime_stagger: the lifetime is moved by a random amount within plus or minus
            this many seconds, so workers started together do not all leave at once.

    Run it with ``await nursery.start(worker.serve)``; it stops when cancelled or when
    the scheduler stays out of reach for `reconnect_timeout` seconds.
    `Worker.from_config` builds one from a `WorkerConfig`.
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
        preload: tuple[str, ...] | list[str] = (),
        client_factory: ClientFactory | None = None,
        lifetime: float | None = None,
        lifetime_stagger: float = 0.0,
    ):
        self.scheduler_address = scheduler_address
        self.heartbeat_interval = heartbeat_interval
        self.scheduler_timeout = scheduler_timeout
        self.reconnect_timeout = reconnect_timeout
        self.lifetime = lifetime
        self.lifetime_stagger = lifetime_stagger
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
        #: where the worker keeps its files (None: the system's temporary directory)
        self.local_directory = local_directory
        self.preloads = Preloads(preload)
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
        #: connects, registers and listens to the scheduler
        self._scheduler = SchedulerConnection(
            scheduler_address, token=self._token, ssl_context=self._client_ssl
        )
        self.address = ""
        self.state: WorkerState | None = None
        #: the client tasks and actors on this worker use (`get_client()`)
        self.client: TaskClient | None = None
        self._client_factory = client_factory
        self.actors = ActorHost(self)
        self._functions: FunctionCache | None = None
        self._jobs: dict[int, Job] = {}
        self._deadlines: dict[int, trio.CancelScope] = {}
        self._sender: BatchedSender | None = None
        self._executor: ThreadExecutor | None = None
        #: where ``async def`` tasks written for asyncio run (set once serving)
        self._asyncio_tasks: AsyncioTaskLoop | None = None
        self._nursery: trio.Nursery | None = None
        self._peers: PeerPool | None = None
        self._stopped = trio.Event()
        #: the worker's recent log records (`Client.get_worker_logs`)
        self.logs = LogBuffer(self)
        #: captures task output while the scheduler asks for it, and sends it on
        self._output = OutputForwarding(self._send_output_entries)
        #: files uploaded with `Client.upload_file`
        self.uploads = UploadedFiles()
        #: the IPython kernel of `Client.start_ipython_workers`, once started
        self.ipython = EmbeddedKernel()
        #: samples the stacks of running tasks (`Client.profile`)
        self.profiler = Sampler(self._jobs)
        #: carries `secede` and `rejoin` from task threads to the state
        self.secession = SecessionBridge(self)
        #: answers clients and other workers on the listening address
        self.peers = PeerServer(self, self._token, self._jobs)
        #: numbers the stimuli the actor feeds the state (see `_stimulus`)
        self._stimuli = itertools.count(1)
        #: worker plugins (`Client.register_plugin`)
        self._plugins = WorkerPlugins(self, self._plugin_done, self._watch_transitions)
        self._flushing = False

    @classmethod
    def from_config(
        cls,
        scheduler_address: str,
        config: WorkerConfig,
        *,
        security: Security | None = None,
        client_factory: ClientFactory | None = None,
    ) -> Worker:
        """A worker for the scheduler at `scheduler_address`, set up as `config` says
        (its ``memory.terminate`` and ``log_level`` are for the process around it)."""
        thresholds = config.memory
        return cls(
            scheduler_address,
            nthreads=config.nthreads,
            name=config.name,
            listen_address=config.listen_address,
            contact_address=config.contact_address,
            memory_limit=config.memory_limit,
            resources=config.resources,
            heartbeat_interval=config.heartbeat_interval,
            scheduler_timeout=config.scheduler_timeout,
            reconnect_timeout=config.reconnect_timeout,
            memory_target_fraction=thresholds.target,
            memory_spill_fraction=thresholds.spill,
            memory_pause_fraction=thresholds.pause,
            local_directory=config.local_directory,
            preload=config.preload,
            security=security,
            client_factory=client_factory,
            lifetime=config.lifetime,
            lifetime_stagger=config.lifetime_stagger,
        )

    @property
    def loop_thread(self) -> threading.Thread | None:
        """The thread of the worker's event loop (set once serving)."""
        return self.secession.loop_thread

    @property
    def nursery(self) -> trio.Nursery | None:
        """The nursery the worker's tasks run in (set once serving)."""
        return self._nursery

    @property
    def stopped(self) -> bool:
        """Whether the worker stopped serving (late outcomes and requests are dropped)."""
        return self._stopped.is_set()

    def stimulus(self, kind: str) -> str:
        """A fresh stimulus id for an event of `kind` (unique within this worker)."""
        return f"{kind}-{next(self._stimuli)}"

    @property
    def status(self) -> str:
        """``"init"`` until the worker serves, ``"running"`` (``"paused"`` while memory
        holds new tasks back), then ``"closed"`` (dask's ``dask_worker.status``)."""
        if self.stopped:
            return "closed"
        if self.state is None:
            return "init"
        return "paused" if self.state.paused else "running"

    def __repr__(self) -> str:
        return f"<Worker {self.address or 'not started'} nthreads={self.nthreads}>"

    def get_current_task(self) -> Any:
        """The key of the task (or actor) the calling thread or trio task runs for, as
        the user gave it; None outside tasks (dask's ``Worker.get_current_task``)."""
        key = current_task_key()
        return decode_key(key) if key is not None else None

    def log_event(self, topic: str | list[str] | tuple[str, ...], msg: Any) -> None:
        """Store `msg` (plain msgpack data) on the scheduler under `topic` (or each of a
        list of topics), as dask's ``Worker.log_event``; `Client.get_events` and
        topic subscribers get it. Never waits. Raises `RuntimeError` before the
        worker's client is connected."""
        if self.client is None:
            raise RuntimeError(f"worker {self.address} has no client to log events with")
        self.client.log_event(topic, msg)

    @property
    def plugins(self) -> dict[str, Any]:
        """The worker plugins running here, by name (dask's ``dask_worker.plugins``)."""
        return self._plugins.plugins

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
            with trio.move_on_after(PLUGIN_TEARDOWN_TIMEOUT, shield=True):
                await self._plugins.teardown_all()
            with trio.CancelScope(shield=True):
                await self.preloads.teardown(self)
            self.logs.detach()
            self.uploads.close()
            self.ipython.stop()
            self._output.stop()

    async def _serve(self, task_status: trio.TaskStatus[Worker]) -> None:
        self.secession.attach()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            listener = self._security.listener_security()
            listen = self._listen_address or await self._scheduler.default_listen_address(
                tls=listener.tls_cert is not None
            )
            ssl_context = listener.server_ssl_context() if listen.startswith("tls://") else None
            bound = await nursery.start(
                partial(serve, ssl_context=ssl_context), listen, self.peers.serve
            )
            self.address = self._contact_address or await reachable_address(
                bound, towards=self._scheduler.host()
            )
            if self.name is None:
                self.name = self.address
            self._functions = FunctionCache(self.address)
            target = self.memory_monitor.target_bytes
            if target is not None:
                self._spill = SpillBuffer(spill_directory(self.local_directory), target)
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
            self.secession.executor = self._executor
            await nursery.start(self.actors.run)
            self._asyncio_tasks = AsyncioTaskLoop(f"trident-tasks-asyncio-{self.name}")
            await nursery.start(self._asyncio_tasks.run)
            nursery.start_soon(self.profiler.run)
            await self.preloads.setup(self)
            connection = await self._scheduler.connect(self.name or self.address)
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
                    await nursery.start(serve_lent_client, self.client, self.address)
                task_status.started(self)
                nursery.start_soon(self._send_heartbeats)
                if self.lifetime is not None:
                    nursery.start_soon(self._retire_after_lifetime, self.lifetime)
                if self.memory_limit:
                    nursery.start_soon(watch_memory, self, self._spill)
                while True:
                    await self._session(connection, welcome)
                    if self._closing:
                        return
                    with trio.CancelScope(shield=True):
                        await connection.aclose()
                    state.handle(ev.SchedulerLost(self.stimulus("scheduler-lost")))
                    self.flush()
                    try:
                        reconnected = await reconnect(
                            self._connect_and_register,
                            within=self.reconnect_timeout,
                            what=f"worker {self.address}",
                            logger=logger,
                        )
                    except ReconnectFailed:
                        self.lost_scheduler = True
                        return
                    connection, welcome = reconnected
                    logger.info("worker %s: registered again", self.address)
            finally:
                self._stopped.set()
                self.secession.release_waiters()
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
        assert self.state is not None
        assert self._nursery is not None
        self._sender = self._scheduler.register(
            connection, self._nursery, self.info(), self.state.keys_in_memory()
        )
        return await self._scheduler.welcome(connection)

    async def _connect_and_register(self) -> tuple[Connection, list[Any]]:
        connection = await self._scheduler.connect(self.name or self.address)
        try:
            return connection, await self._register(connection)
        except BaseException:
            with trio.CancelScope(shield=True):
                await connection.aclose()
            raise

    async def _session(self, connection: Connection, first: list[Any]) -> None:
        """Serve the scheduler on `connection` until it is lost: broken, or silent for
        `scheduler_timeout` seconds."""
        await self._scheduler.session(
            connection,
            first,
            self._from_scheduler,
            timeout=self.scheduler_timeout,
            who=self.address,
        )

    def _from_scheduler(self, messages: list[Any]) -> bool:
        """Feed the state one frame from the scheduler and act on it; True when closing."""
        assert self.state is not None
        handle = self.state.handle
        stimulus_id = self.stimulus("scheduler")  # one per frame received
        for msg in messages:
            handle(ev.FromScheduler(msg, stimulus_id))
        self.flush()
        return self._closing

    def info(self) -> m.WorkerInfo:
        return m.WorkerInfo(
            self.address,
            self.name or self.address,
            self.nthreads,
            self.memory_limit,
            self.resources,
        )

    async def _retire_after_lifetime(self, lifetime: float) -> None:
        """Ask the scheduler to retire this worker once `lifetime` (moved by up to
        `lifetime_stagger` either way) has passed; it answers with `CloseWorker`."""
        stagger = (random.random() * 2 - 1) * self.lifetime_stagger
        await trio.sleep(max(0.0, lifetime + stagger))
        logger.info("worker %s: lifetime over; asking to be retired", self.address)
        assert self._sender is not None
        self._sender.send(m.WorkerRetiring(f"lifetime of {lifetime:g} s"))

    async def _send_heartbeats(self) -> None:
        process = psutil.Process()
        process.cpu_percent(None)
        while True:
            self._heartbeat(process)
            await trio.sleep(self.heartbeat_interval)

    def _heartbeat(self, process: psutil.Process) -> None:
        assert self.state is not None
        assert self._sender is not None
        self._sender.send(heartbeat(self.state, process, self.memory_limit, self._spill))

    # --- administration: uploads, replicas, retirement ------------------------------

    def _store_file(self, instruction: ins.StoreFile) -> None:
        """Store and import an uploaded file; tell the state how it went."""
        assert self.state is not None
        error = self.uploads.try_store(
            instruction.filename, instruction.data, load=instruction.load, who=self.address
        )
        stimulus_id = self.stimulus("file-stored")
        self.state.handle(ev.FileStoreDone(instruction.upload, error, stimulus_id))

    def _plugin_done(self, request: int, error: m.ErrorInfo | None) -> None:
        """A plugin hook the scheduler asked for finished: tell the state (and flush,
        unless this runs while flushing)."""
        if self.state is None or self.stopped:
            return
        self.state.handle(ev.PluginHookDone(request, error, self.stimulus("plugin")))
        if not self._flushing:
            self.flush()

    def _watch_transitions(self, on: bool) -> None:
        if self.state is not None:
            self.state.watch_transitions(on)

    def _send_output_entries(self, entries: list[m.OutputEntry]) -> None:
        if self._sender is not None:
            self._sender.send(m.TaskOutput(self.address, entries))

    # --- carrying out the state's decisions -------------------------------------------------

    def flush(self) -> None:
        """Send what the state has for the scheduler and carry out its instructions;
        again while carrying them out fed the state new events (a hosted actor, a
        stored file)."""
        assert self.state is not None
        assert self._sender is not None
        self._flushing = True
        try:
            self._flush()
        finally:
            self._flushing = False

    def _flush(self) -> None:
        assert self.state is not None
        assert self._sender is not None
        again = True
        while again:
            again = False
            out, instructions = self.state.flush()
            if out:
                self._sender.send_now(out)
            noted = self.state.transition_log
            if noted:
                self.state.transition_log = self.state.slots.transition_log = []
                self._plugins.transitions(noted)
            for instruction in instructions:
                if isinstance(instruction, ins.Execute):
                    self._execute(instruction.key, instruction.run_id)
                elif isinstance(instruction, ins.Fetch):
                    assert self._nursery is not None
                    self._nursery.start_soon(self._fetch, instruction.peer, instruction.keys)
                elif isinstance(instruction, ins.Interrupt):
                    self._interrupt(instruction.key, instruction.run_id)
                elif isinstance(instruction, ins.ForgetActor):
                    self.actors.forget(instruction.key)
                elif isinstance(instruction, ins.Rejoin):
                    self.secession.rejoined(self._jobs.get(instruction.run_id), instruction.run_id)
                else:
                    again = self._carry_out(instruction) or again

    def _carry_out(self, instruction: ins.Instruction) -> bool:
        """Carry out one of the rarer instructions; True when it fed the state an event."""
        if isinstance(instruction, ins.HostActor):
            self._host_actor(instruction)
            return True
        if isinstance(instruction, ins.LoadFunction):
            assert self._functions is not None
            self._functions.load(instruction.token, instruction.function)
        elif isinstance(instruction, ins.ForgetFunctions):
            assert self._functions is not None
            self._functions.forget(instruction.tokens)
        elif isinstance(instruction, ins.StoreFile):
            self._store_file(instruction)
            return True
        elif isinstance(instruction, ins.SetupPlugin):
            assert self._nursery is not None
            self._plugins.setup(
                self._nursery, instruction.request, instruction.name, instruction.plugin
            )
            return True
        elif isinstance(instruction, ins.TeardownPlugin):
            assert self._nursery is not None
            self._plugins.teardown(self._nursery, instruction.request, instruction.name)
            return True
        elif isinstance(instruction, ins.CaptureOutput):
            assert self._nursery is not None
            self._output.set(instruction.enabled, self._nursery)
        elif isinstance(instruction, ins.Close):
            logger.info("worker %s: closing: %s", self.address, instruction.reason)
            self._closing = True
        return False

    def _execute(self, key: str, run_id: int) -> None:
        assert self.state is not None
        assert self._executor is not None
        assert self._nursery is not None
        ts = self.state.tasks[key]
        assert ts.args is not None
        assert self._functions is not None
        function = self._functions.get(ts.function)
        inline = ts.inline_result
        if ts.actor is not None:
            function = actor_constructor(function, ts.restarts)
            inline = False  # the result is the actor's location, made when it is hosted
        job = Job(
            key,
            run_id,
            function,
            ts.args,
            self.state.data,
            inline,
            self._output.collector,
            actor=ts.actor is not None,
        )
        self._jobs[run_id] = job
        self.profiler.wake()
        if ts.timeout is not None:
            scope = self._deadlines[run_id] = trio.CancelScope()
            self._nursery.start_soon(self._enforce_deadline, key, run_id, ts.timeout, scope)
        if ts.actor is None and self._functions.is_async(ts.function):
            uses_asyncio = self._functions.uses_asyncio(ts.function)
            self._nursery.start_soon(self._run_async, job, uses_asyncio)
        else:
            self._executor.submit(job)

    async def _enforce_deadline(
        self, key: str, run_id: int, timeout: float, scope: trio.CancelScope
    ) -> None:
        with scope:
            await trio.sleep(timeout)
            assert self.state is not None
            error = TimeoutError(f"task {key!r} did not finish within its {timeout} s deadline")
            info = error_info(error, self.address)
            self.state.handle(ev.RunTimedOut(run_id, info, self.stimulus("deadline")))
            if self.client is not None:
                self.client.task_ended(key, succeeded=False)
            self.flush()

    async def _run_async(self, job: Job, uses_asyncio: bool) -> None:
        loop = None
        if uses_asyncio:
            assert self._asyncio_tasks is not None
            loop = self._asyncio_tasks.get()
        outcome = await run_async_job(job, self, loop)
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
        self._output.send_now()  # before the tasks are reported finished
        stimulus_id = self.stimulus("outcomes")  # one per batch the executor hands over
        for outcome in outcomes:
            run_id = outcome.run_id
            self._jobs.pop(run_id, None)
            deadline = self._deadlines.pop(run_id, None)
            if deadline is not None:
                deadline.cancel()
            event, succeeded = outcome_event(outcome, stimulus_id)
            state.handle(event)
            if succeeded is not None and self.client is not None:
                self.client.task_ended(outcome.key, succeeded=succeeded)
        self.flush()

    def _host_actor(self, instruction: ins.HostActor) -> None:
        """Host a freshly built actor; its location becomes the task's result."""
        assert self.state is not None
        location = self.actors.host(
            instruction.key, instruction.instance, instruction.options, instruction.restarts
        )
        payload = dumps(location) if instruction.inline else None
        stimulus_id = self.stimulus("actor-hosted")
        self.state.handle(
            ev.ActorHosted(instruction.run_id, location, sizeof(location), payload, stimulus_id)
        )

    async def _fetch(self, peer: str, keys: list[str]) -> None:
        assert self.state is not None
        assert self._peers is not None
        values = await fetch_from_peer(self._peers, peer, keys, self.address)
        if values is None:
            self.state.handle(ev.FetchFailed(peer, keys, self.stimulus("fetch-failed")))
        else:
            nbytes = {key: sizeof(value) for key, value in values.items()}
            self.state.handle(ev.FetchDone(peer, keys, values, nbytes, self.stimulus("fetched")))
        self.flush()


__all__ = ["Worker", "error_info"]


publish(globals())
