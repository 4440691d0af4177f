"""`Scheduler`: the actor that accepts clients and workers and runs `SchedulerState`.

Each connection gets its own task (a child of the scheduler's nursery) that reads
batches of messages, feeds them to the state machine and hands the resulting messages
to per-peer `BatchedSender`s. A peer that sends garbage or breaks the rules loses its
connection, with the reason logged; every other peer is unaffected.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

import trio

from .._ipython import EmbeddedKernel
from .._plugins import call_hook
from .._public import publish
from .._run_function import run_function
from ..comm import handshake
from ..comm.admission import HandshakeGate
from ..comm.batched import BatchedSender
from ..comm.connection import Connection, ConnectionClosed
from ..comm.streams import ByteStream, StreamClosed
from ..comm.transports import describe, serve
from ..protocol import messages as m
from ..protocol.errors import InvalidBatch, ProtocolError
from ..protocol.failures import error_info
from ..protocol.serialize import loads
from ..security import Security
from .liveness import LivenessSettings
from .state import InvalidMessage, SchedulerState

logger = logging.getLogger("trident.scheduler")

REGISTRATION_TIMEOUT = 10.0
#: Seconds the scheduler's plugins get to close when it stops.
PLUGIN_CLOSE_TIMEOUT = 10.0


class SchedulerService(Protocol):
    """A service the scheduler runs in its own nursery (its HTTP dashboard)."""

    #: ``host:port`` once it listens
    address: str

    async def serve(self, *, task_status: trio.TaskStatus[str] = ...) -> None: ...


#: Builds the dashboard for a scheduler's state, the address it listens on (as
#: `Scheduler`'s `dashboard_address`) and the cluster token. The dashboard sits above the
#: scheduler, so whoever builds a `Scheduler` hands this down
#: (`trident.dashboard.dashboard_for`).
DashboardFactory = Callable[[SchedulerState, "str | int", "str | None"], SchedulerService]


class Scheduler:
    """Coordinates workers and clients.

    Arguments:
        address: where to listen, e.g. ``tcp://127.0.0.1:0`` (a free port) or
            ``inproc://name``.
        extra_addresses: more addresses to listen on (an in-process address next to TCP
            lets an in-process client skip the network).
        token: the cluster token peers must prove they know; None disables auth.
        dashboard_address: where to serve the HTTP dashboard and ``/metrics``:
            ``"host:port"``, ``":port"`` or a port (loopback when no host is given; 0
            picks a free port; a taken port falls back to a free one). None (the
            default) serves no dashboard. The dashboard requires `token` when set.
        dashboard_factory: builds that dashboard (`trident.dashboard.dashboard_for`);
            required with `dashboard_address`.
        security: the cluster's `Security`: its token (unless `token` is given) and the
            certificate for ``tls://`` addresses.
        liveness: the heartbeat interval, how long workers and clients may stay silent
            before they are treated as gone, and how long a disconnected client's work
            is kept for it to resume (`LivenessSettings`).
        allowed_failures: how many workers a task may be running on when they die
            before it fails with `KilledWorker` (it fails on death number
            ``allowed_failures + 1``).

    Run it with ``await nursery.start(scheduler.serve)``, which returns once it listens.
    """

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:0",
        *,
        extra_addresses: tuple[str, ...] = (),
        token: str | None = None,
        dashboard_address: str | int | None = None,
        security: Security | None = None,
        liveness: LivenessSettings | None = None,
        allowed_failures: int = 3,
        dashboard_factory: DashboardFactory | None = None,
    ):
        if dashboard_address is not None and dashboard_factory is None:
            raise ValueError(
                "dashboard_address needs dashboard_factory=trident.dashboard.dashboard_for"
            )
        self.id = f"scheduler-{uuid.uuid4().hex[:12]}"
        self._dashboard_address = dashboard_address
        self._dashboard_factory = dashboard_factory
        #: the running dashboard, if any (available once serving)
        self.dashboard: SchedulerService | None = None
        self._listen = (address, *extra_addresses)
        self._token = token if token is not None or security is None else security.token
        self._ssl_context = (
            security.server_ssl_context()
            if security is not None and any(a.startswith("tls://") for a in self._listen)
            else None
        )
        self.addresses: list[str] = []
        self.state = SchedulerState(self.id, allowed_failures=allowed_failures, liveness=liveness)
        self._senders: dict[str, BatchedSender] = {}
        self._gate = HandshakeGate("scheduler")
        #: peer id -> the cancel scope and end event of the task serving its connection
        self._connections: dict[str, tuple[trio.CancelScope, trio.Event]] = {}
        self._worker_registered = trio.Event()
        self._cancel_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self.state.remote_calls.run_here = self._run_function
        self.state.plugins.run_here = self._plugin_request
        self.state.plugins.scheduler = self
        #: the IPython kernel of `Client.start_ipython_scheduler`, once started
        self.ipython = EmbeddedKernel()

    @property
    def token(self) -> str | None:
        """The cluster token peers must present (None: no authentication)."""
        return self._token

    @property
    def dashboard_address(self) -> str | None:
        """``host:port`` of the dashboard once it listens; None without one."""
        return self.dashboard.address if self.dashboard is not None else None

    @property
    def address(self) -> str:
        """The first address the scheduler listens on (available once serving)."""
        return self.addresses[0] if self.addresses else ""

    @property
    def tasks(self) -> Mapping[str, Any]:
        """The tasks the scheduler knows, by key: a read-only view (dask's
        ``dask_scheduler.tasks``; each record has ``key``, ``state``, ``who_has``)."""
        return MappingProxyType(self.state.tasks)

    @property
    def workers(self) -> Mapping[str, Any]:
        """The connected workers, by address: a read-only view (dask's
        ``dask_scheduler.workers``; each record has ``address``, ``name``, ``nthreads``,
        ``processing``, ``has_what``)."""
        return MappingProxyType(self.state.workers)

    def __repr__(self) -> str:
        return (
            f"<Scheduler {self.address or 'not started'} workers={len(self.state.workers)} "
            f"clients={len(self.state.clients)}>"
        )

    async def serve(
        self, *, task_status: trio.TaskStatus[Scheduler] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until cancelled (or `close` is called)."""
        logs = self.state.logs
        logs.claim_current_context()
        logs.attach("trident", info_from=("trident.scheduler",))
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                self._nursery = nursery
                nursery.start_soon(self._keep_time)
                for address in self._listen:
                    self.addresses.append(
                        await nursery.start(
                            partial(serve, ssl_context=self._ssl_context),
                            address,
                            self._handle_connection,
                        )
                    )
                self.state.address = self.address
                logger.info("scheduler: listening at %s", ", ".join(self.addresses))
                if self._dashboard_address is not None:
                    await self._start_dashboard(nursery, self._dashboard_address)
                task_status.started(self)
        finally:
            with trio.move_on_after(PLUGIN_CLOSE_TIMEOUT, shield=True):
                await self._close_plugins()
            logs.detach()
            self.ipython.stop()

    async def _start_dashboard(self, nursery: trio.Nursery, address: str | int) -> None:
        assert self._dashboard_factory is not None
        self.dashboard = self._dashboard_factory(self.state, address, self._token)
        self.state.services["dashboard"] = await nursery.start(self.dashboard.serve)

    def close(self) -> None:
        """Stop serving; every connection is closed."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    async def retire_workers(self, addresses: list[str], *, close: bool = False) -> dict[str, Any]:
        """Retire workers from within the scheduler's loop (see `Client.retire_workers`);
        return ``{address: info}`` of those retired (none when their data had nowhere
        to go). A checkpoint."""
        done = trio.Event()
        retired: dict[str, Any] = {}

        def finished(found: dict[str, Any]) -> None:
            retired.update(found)
            done.set()

        self.state.data_movement.retire(addresses, close=close, on_done=finished)
        self._flush()
        await done.wait()
        return retired

    async def wait_for_workers(self, n: int) -> None:
        """Return once at least `n` workers are registered."""
        while len(self.state.workers) < n:
            self._worker_registered = trio.Event()
            await self._worker_registered.wait()

    # --- functions run here (`Client.run_on_scheduler`) ------------------------------------

    def _run_function(self, client_id: str, call: m.RunFunction) -> None:
        """Run a client's function in the scheduler's loop; answer with a `RunResult`."""
        assert self._nursery is not None
        self._nursery.start_soon(self._run_and_answer, client_id, call)

    async def _run_and_answer(self, client_id: str, call: m.RunFunction) -> None:
        # Imported here: the function runner pulls in the worker's executor.
        assert self._nursery is not None
        result = await run_function(
            call, self, "scheduler", nursery=self._nursery, address=self.address
        )
        sender = self._senders.get(client_id)
        if sender is not None:
            sender.send(result)

    # --- scheduler plugins (`Client.register_plugin`) --------------------------------------

    @property
    def plugins(self) -> Mapping[str, Any]:
        """The scheduler plugins, by name: a read-only view (dask's
        ``dask_scheduler.plugins``)."""
        return MappingProxyType(self.state.plugins.scheduler_plugins)

    def _plugin_request(self, client_id: str, msg: m.RegisterPlugin | m.UnregisterPlugin) -> None:
        """Add or remove a scheduler plugin for a client, in the scheduler's loop."""
        assert self._nursery is not None
        self._nursery.start_soon(self._carry_out_plugin_request, client_id, msg)

    async def _carry_out_plugin_request(
        self, client_id: str, msg: m.RegisterPlugin | m.UnregisterPlugin
    ) -> None:
        """Unpickle and start the plugin (closing the one it replaces), or close the one
        unregistered; answer the client with what raised, if anything."""
        plugins = self.state.plugins
        error = None
        try:
            old = plugins.remove_scheduler_plugin(msg.name)
            if old is not None:
                await call_hook(old, "close")
            if isinstance(msg, m.RegisterPlugin):
                plugin = loads(msg.plugin)
                await call_hook(plugin, "start", self)
                plugins.add_scheduler_plugin(msg.name, plugin)
                logger.info("scheduler: plugin %s added", msg.name)
        except Exception as exc:
            logger.warning("scheduler: plugin %s failed: %r", msg.name, exc)
            error = error_info(exc, self.address)
        sender = self._senders.get(client_id)
        if sender is not None:
            sender.send(m.PluginResults(msg.request_id, {}, error))

    async def _close_plugins(self) -> None:
        plugins = self.state.plugins
        for name in list(plugins.scheduler_plugins):
            plugin = plugins.remove_scheduler_plugin(name)
            try:
                await call_hook(plugin, "close")
            except Exception:
                logger.exception("scheduler: closing plugin %s failed", name)

    async def _keep_time(self) -> None:
        """Tick the state's clock once per heartbeat interval; close silent peers."""
        interval = self.state.liveness.settings.heartbeat_interval
        self.state.liveness.now = trio.current_time()
        while True:
            await trio.sleep(interval)
            for peer_id in self.state.tick(trio.current_time()):
                self._disconnect(peer_id)
            self._flush()

    def _disconnect(self, peer_id: str) -> None:
        entry = self._connections.get(peer_id)
        if entry is not None:
            entry[0].cancel()

    # --- connections -------------------------------------------------------------------

    def _flush(self) -> None:
        for peer, messages in self.state.flush().items():
            sender = self._senders.get(peer)
            if sender is not None:
                sender.send_now(messages)

    async def _handle_connection(self, stream: ByteStream) -> None:
        self.state.logs.claim_current_context()
        connection = Connection(stream, peer=describe(stream))
        try:
            with self._gate.admit() as admitted:
                hello = await handshake.accept(
                    connection, token=self._token, server_id=self.id, server_role="scheduler"
                )
                with trio.fail_after(REGISTRATION_TIMEOUT):
                    if hello.role == "client":
                        first = await connection.receive_one(m.RegisterClient, m.ResumeClient)
                    elif hello.role == "worker":
                        first = await connection.receive_one(m.RegisterWorker)
                    elif hello.role == "nanny":
                        first = await connection.receive_one(m.RegisterNanny)
                    else:
                        raise ProtocolError(f"role {hello.role!r} cannot connect to a scheduler")
        except (ProtocolError, handshake.AuthenticationError, trio.TooSlowError) as exc:
            logger.warning("scheduler: refused connection from %s: %s", connection.peer, exc)
            return
        except (ConnectionClosed, StreamClosed):
            return
        if admitted.cancelled_caught:
            return  # evicted to make room for newer connections (the gate logs it)
        if isinstance(first, m.RegisterClient | m.ResumeClient):
            await self._serve_peer(connection, first.client_id, first, role="client")
        elif isinstance(first, m.RegisterNanny):
            await self._serve_peer(connection, first.nanny_id, first, role="nanny")
        else:
            await self._serve_peer(connection, first.info.address, first, role="worker")

    def _register(self, peer_id: str, registration: Any, role: str) -> Callable[[str, Any], None]:
        """Add the peer to the state; return the state's handler for its messages."""
        state = self.state
        if role == "client":
            if isinstance(registration, m.ResumeClient):
                state.resume_client(registration)
                logger.info("scheduler: client %s reconnected", peer_id)
            else:
                state.add_client(peer_id, registration.name)
                logger.info("scheduler: client %s connected", peer_id)
            return state.handle_client_message
        if role == "nanny":
            state.add_nanny(registration)
            logger.info(
                "scheduler: nanny %s of worker %r connected from %s (pid %d)",
                peer_id,
                registration.worker_name,
                registration.host,
                registration.pid,
            )
            return state.handle_nanny_message
        state.add_worker(registration.info, registration.keys)
        logger.info(
            "scheduler: worker %s registered (%d threads)", peer_id, registration.info.nthreads
        )
        self._worker_registered.set()
        return state.handle_worker_message

    def _unregister(self, peer_id: str, role: str, *, goodbye: bool) -> None:
        """Take a peer whose connection ended off the state; without a goodbye a client
        may still resume, and a worker's nanny may still say why it died."""
        if role == "client":
            if goodbye:
                self.state.remove_client(peer_id)
            else:
                self.state.client_disconnected(peer_id)
        elif role == "nanny":
            self.state.remove_nanny(peer_id)
        else:
            self.state.remove_worker(peer_id, await_report=not goodbye)
        logger.info("scheduler: %s %s left", role, peer_id)

    async def _replace(self, peer_id: str) -> None:
        """A peer registers under an id whose connection is still served (a client or
        worker back before its old connection was noticed dead): close the old one."""
        entry = self._connections.get(peer_id)
        if entry is None:
            return
        logger.info("scheduler: %s connected again; closing its previous connection", peer_id)
        scope, ended = entry
        scope.cancel()
        await ended.wait()

    def _refuse_requests(self, peer_id: str, sender: BatchedSender, batch: InvalidBatch) -> None:
        """Answer each request of a client's packet that failed validation with an error,
        so the caller gets it and the connection (and its session) stays up."""
        for rejected in batch.rejected:
            logger.warning("scheduler: invalid request from %s: %s", peer_id, rejected.reason)
        sender.send_now(
            m.Reply(r.request_id, None, f"invalid request: {r.reason}") for r in batch.rejected
        )

    async def _serve_peer(
        self, connection: Connection, peer_id: str, registration: Any, *, role: str
    ) -> None:
        await self._replace(peer_id)
        if peer_id in self._connections:
            logger.warning("scheduler: refused duplicate peer id %s", peer_id)
            return
        sender = BatchedSender(connection)
        ended = trio.Event()
        goodbye = False
        heard_from = self.state.liveness.heard_from
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender.run)
            self._senders[peer_id] = sender
            self._connections[peer_id] = (nursery.cancel_scope, ended)
            try:
                handle = self._register(peer_id, registration, role)
                heard_from(peer_id, trio.current_time())
                self._flush()
                while True:
                    try:
                        messages = await connection.receive()
                    except InvalidBatch as exc:
                        if role != "client":
                            raise
                        messages = exc.messages
                        self._refuse_requests(peer_id, sender, exc)
                    heard_from(peer_id, trio.current_time())
                    for msg in messages:
                        if type(msg) is m.Goodbye:
                            goodbye = True
                            return
                        handle(peer_id, msg)
                    # Not kept while waiting for the next packet: a graph may embed
                    # large values, which the tasks built from it hold as long as needed.
                    messages, msg = [], None
                    self._flush()
            except (ConnectionClosed, StreamClosed):
                pass
            except (ProtocolError, InvalidMessage) as exc:
                logger.warning("scheduler: closing connection to %s: %s", peer_id, exc)
                goodbye = True  # a peer that broke the rules does not resume
            finally:
                del self._senders[peer_id]
                del self._connections[peer_id]
                self._unregister(peer_id, role, goodbye=goodbye)
                self._flush()
                ended.set()
                nursery.cancel_scope.cancel()


publish(globals())
