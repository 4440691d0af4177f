"""A peer that holds the token trusts no server that cannot prove it knows it.

A rogue scheduler, written on bare trio sockets, answers the handshake badly (no proof,
a wrong one, one replayed from another connection, the peer's own proof reflected, a
live worker's honest answer relayed) and then does what a scheduler may do: send the
client a result, the worker a function, the nanny a function to run, a peer some data.
Every payload is a pickle whose loading creates a marker file. Each victim (client,
worker, nanny, worker-to-worker peer) must refuse with `AuthenticationError` and the
marker must never appear; a control with a rogue that knows the token shows the payloads
do create their markers once let in. The same holds when the rogue takes the port of a
scheduler that died while its peers try to reconnect.

The second half is bad luck rather than malice: a port that resets connections (or
closes them in the middle of the handshake) for two seconds before the real scheduler
comes back there; clients and workers keep trying and their pending work completes.
"""

from __future__ import annotations

import os
import socket
import struct
from functools import partial
from pathlib import Path

import pytest
import trio

from trident import AuthenticationError, Client, Scheduler, SchedulerLostError, Security, Worker
from trident.comm import handshake
from trident.comm.connection import Connection
from trident.comm.rpc import PeerPool, PeerUnavailable
from trident.comm.transports import connect
from trident.protocol import messages as m
from trident.protocol.serialize import dumps, loads
from trident.protocol.wire import decode_batch, encode_batch, packet_chunks
from trident.worker.nanny import Nanny

TOKEN = "hostile-test-token"
SECURITY = Security(token=TOKEN)


class LeavesFile:
    """Unpickling this creates a file: the stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.touch, (self.path,))


def inc(x):
    return x + 1


# --- a rogue server on trio sockets ---------------------------------------------------


async def send_packet(sock, *messages) -> None:
    data = b"".join(bytes(chunk) for chunk in packet_chunks(encode_batch(list(messages))))
    while data:
        data = data[await sock.send(data) :]


async def receive_exactly(sock, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = await sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the peer closed the connection")
        data += chunk
    return bytes(data)


async def receive_packet(sock) -> list:
    (count,) = struct.unpack("<I", await receive_exactly(sock, 4))
    lengths = struct.unpack(f"<{count}Q", await receive_exactly(sock, 8 * count))
    return decode_batch([await receive_exactly(sock, n) for n in lengths])


async def listening_socket(port: int = 0):
    """A listening trio socket on `port` (waiting up to 5 s for a closing one to free it)."""
    with trio.fail_after(5):
        while True:
            listener = trio.socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                await listener.bind(("127.0.0.1", port))
            except OSError:
                listener.close()
                await trio.sleep(0.02)
                continue
            listener.listen()
            return listener


class Rogue:
    """Answers the handshake as `server_role` the way `mode` says, then attacks.

    Modes: ``no-proof`` (claims no token is needed), ``wrong-proof``, ``replayed`` (a
    real scheduler's Challenge and Welcome recorded from another connection),
    ``reflected`` (the peer's own proof sent back), ``relayed`` (the handshake passed to
    a live worker of the cluster and its honest answer passed back), ``honest`` (knows
    the token: the control). The payload for each victim role creates
    ``markers / <role>`` when unpickled.
    """

    def __init__(self, mode, markers, *, server_role="scheduler", recorded=None, worker=None):
        self.mode = mode
        self.markers = Path(markers)
        self.server_role = server_role
        self.recorded = recorded
        self.worker = worker
        self.connections = 0
        self.address = ""

    async def serve(self, *, port=0, task_status=trio.TASK_STATUS_IGNORED):
        listener = await listening_socket(port)
        self.address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        with listener:
            async with trio.open_nursery() as nursery:
                task_status.started(self.address)
                while True:
                    sock, _ = await listener.accept()
                    nursery.start_soon(self._handle, sock)

    async def _handle(self, sock) -> None:
        self.connections += 1
        with sock:
            try:
                hello = await self._handshake(sock)
                if hello is not None:
                    await self._attack(sock, hello)
            except (EOFError, OSError):
                pass  # the victim hung up, as it should

    async def _handshake(self, sock) -> m.Hello | None:
        nonce = os.urandom(16)
        if self.mode == "relayed":
            return await self._relay(sock)
        if self.mode == "replayed":
            challenge, welcome = self.recorded
            await send_packet(sock, challenge)
            (hello,) = await receive_packet(sock)
            await send_packet(sock, welcome)
            return hello
        await send_packet(
            sock, m.Challenge(nonce, "rogue", m.PROTOCOL_VERSION, self.mode != "no-proof")
        )
        (hello,) = await receive_packet(sock)
        if self.mode == "no-proof":
            proof = b""
        elif self.mode == "wrong-proof":
            proof = os.urandom(32)
        elif self.mode == "reflected":
            proof = hello.proof
        else:
            assert self.mode == "honest"
            binding = (hello.role, self.server_role, nonce, hello.nonce, "rogue")
            proof = handshake.server_proof(TOKEN, *binding)
        await send_packet(sock, m.Welcome(proof, "rogue"))
        return hello

    async def _relay(self, sock) -> m.Hello:
        host, port = self.worker.rsplit(":", 1)
        upstream = trio.socket.socket()
        with upstream:
            await upstream.connect((host.removeprefix("tcp://"), int(port)))
            await send_packet(sock, *await receive_packet(upstream))  # the worker's Challenge
            (hello,) = await receive_packet(sock)
            await send_packet(upstream, hello)
            await send_packet(sock, *await receive_packet(upstream))  # its honest Welcome
        return hello

    def _payload(self, role: str):
        return dumps(LeavesFile(self.markers / role))

    async def _attack(self, sock, hello: m.Hello) -> None:
        role = hello.role
        while True:
            for msg in await receive_packet(sock):
                kind = type(msg)
                if kind in (m.RegisterClient, m.ResumeClient):
                    reply = [m.ClientWelcome("rogue", []), m.SchedulerServices(None)]
                    if kind is m.ResumeClient:
                        reply.append(m.ClientResumed(False))
                    await send_packet(sock, *reply)
                elif kind is m.RegisterWorker:
                    await send_packet(
                        sock,
                        m.WorkerWelcome("rogue"),
                        m.DefineFunction("evil", self._payload(role)),
                    )
                elif kind is m.RegisterNanny:
                    run = m.RunFunction(1, self._payload(role), dumps(((), {})), False)
                    await send_packet(sock, m.NannyWelcome("rogue"))
                    await send_packet(sock, run)
                elif kind is m.UpdateGraph:
                    done = [m.KeyDone(t.key, "X", 1, self._payload(role)) for t in msg.tasks]
                    await send_packet(sock, *done)
                elif kind is m.TaskSpec:
                    await send_packet(sock, m.KeyDone(msg.key, "X", 1, self._payload(role)))
                elif kind is m.GetData:
                    data = {key: self._payload(role) for key in msg.keys}
                    await send_packet(sock, m.DataReply(msg.request_id, data, []))


def leaf(exc: BaseException) -> BaseException:
    """The one exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# Each rogue's mode, and what the victim says about it.
ATTACKS = {
    "no-proof": "claims no cluster token is needed",
    "wrong-proof": "could not prove it knows the cluster token",
    "replayed": "could not prove it knows the cluster token",
    "reflected": "could not prove it knows the cluster token",
    # The live worker refuses the victim's Hello (bound to a scheduler), unproven.
    "relayed": "refused the connection: invalid cluster token",
}


@pytest.fixture
async def cluster(monkeypatch):
    """A real scheduler and worker with the token, and a recording of one handshake
    with that scheduler (what a rogue that watched the network could replay)."""
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(Scheduler("tcp://127.0.0.1:0", security=SECURITY).serve)
        worker = await nursery.start(Worker(scheduler.address, security=SECURITY).serve)
        connection = Connection(await connect(scheduler.address))
        challenge = await connection.receive_one(m.Challenge)
        nonce = os.urandom(16)
        proof = handshake.peer_proof(
            TOKEN, "client", "scheduler", challenge.nonce, nonce, challenge.server_id
        )
        await connection.send([m.Hello("client", "legit", m.PROTOCOL_VERSION, proof, nonce)])
        welcome = await connection.receive_one(m.Welcome)
        await connection.aclose()
        yield scheduler, worker, (challenge, welcome)
        nursery.cancel_scope.cancel()


async def start_rogue(nursery, mode, tmp_path, cluster, **options) -> Rogue:
    _, worker, recorded = cluster
    rogue = Rogue(mode, tmp_path, recorded=recorded, worker=worker.address, **options)
    await nursery.start(rogue.serve)
    return rogue


@pytest.mark.parametrize("mode", ATTACKS)
async def test_a_rogue_scheduler_runs_nothing_in_a_client(mode, cluster, tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rogue = await start_rogue(nursery, mode, tmp_path, cluster)
            with pytest.raises(AuthenticationError, match=ATTACKS[mode]):
                async with Client(
                    rogue.address, asynchronous=True, set_as_default=False, security=TOKEN
                ) as client:
                    await client.submit(inc, 1)
            assert rogue.connections == 1
            nursery.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ATTACKS)
async def test_a_rogue_scheduler_runs_nothing_in_a_worker(mode, cluster, tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rogue = await start_rogue(nursery, mode, tmp_path, cluster)
            with pytest.raises((AuthenticationError, BaseExceptionGroup)) as info:
                async with trio.open_nursery() as workers:
                    await workers.start(Worker(rogue.address, security=SECURITY).serve)
            error = leaf(info.value)
            assert isinstance(error, AuthenticationError)
            assert ATTACKS[mode] in str(error)
            nursery.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ATTACKS)
async def test_a_rogue_scheduler_runs_nothing_in_a_nanny(mode, cluster, tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rogue = await start_rogue(nursery, mode, tmp_path, cluster)
            nanny = Nanny(rogue.address, security=SECURITY)
            with pytest.raises(AuthenticationError, match=ATTACKS[mode]):
                await nanny.serve()
            assert nanny.worker_pid is None  # refused before any worker was started
            nursery.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", [mode for mode in ATTACKS if mode != "relayed"])
async def test_a_rogue_worker_gives_a_peer_no_data(mode, cluster, tmp_path):
    # What a worker (or a client's gather) does: ask a peer for data and unpickle it.
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rogue = await start_rogue(nursery, mode, tmp_path, cluster, server_role="worker")
            pool = PeerPool(nursery, role="peer", name="victim", token=TOKEN)
            # A reply that got through would be unpickled here, running the rogue's code.
            with pytest.raises(PeerUnavailable) as info:  # noqa: PT012
                reply = await pool.request(rogue.address, lambda rid: m.GetData(rid, ["k"]))
                loads(reply.data["k"])
            assert isinstance(info.value.__cause__, AuthenticationError)
            assert ATTACKS[mode] in str(info.value)
            pool.close()
            nursery.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []


async def test_control_a_rogue_that_knows_the_token_does_run_its_payloads(cluster, tmp_path):
    """The attacks above mean it: once the rogue proves the token, every payload runs."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            rogue = await start_rogue(nursery, "honest", tmp_path, cluster)
            async with Client(
                rogue.address, asynchronous=True, set_as_default=False, security=TOKEN
            ) as client:
                assert await client.submit(inc, 1) is None  # Path.touch's result
            assert (tmp_path / "client").exists()

            async with trio.open_nursery() as workers:
                await workers.start(Worker(rogue.address, security=SECURITY).serve)
                with trio.fail_after(10):
                    while not (tmp_path / "worker").exists():
                        await trio.sleep(0.01)
                workers.cancel_scope.cancel()

            async with trio.open_nursery() as nannies:
                nanny = Nanny(rogue.address, security=SECURITY)
                nannies.start_soon(nanny.serve)
                with trio.fail_after(30):
                    while not (tmp_path / "nanny").exists():
                        await trio.sleep(0.01)
                nanny.close()

            peers = Rogue("honest", tmp_path / "peers", server_role="worker")
            (tmp_path / "peers").mkdir()
            await nursery.start(peers.serve)
            pool = PeerPool(nursery, role="peer", name="victim", token=TOKEN)
            reply = await pool.request(peers.address, lambda rid: m.GetData(rid, ["k"]))
            loads(reply.data["k"])
            assert (tmp_path / "peers" / "peer").exists()
            pool.close()
            nursery.cancel_scope.cancel()


# --- a rogue that takes the port of a scheduler that died -----------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("mode", ["no-proof", "wrong-proof", "replayed"])
async def test_a_rogue_on_a_dead_schedulers_port_is_never_trusted(mode, tmp_path, monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            scheduler = Scheduler(address, security=SECURITY)
            await nursery.start(scheduler.serve)
            worker = Worker(address, security=SECURITY, reconnect_timeout=2)
            async with trio.open_nursery() as workers:
                await workers.start(worker.serve)
                async with Client(
                    address,
                    asynchronous=True,
                    set_as_default=False,
                    security=TOKEN,
                    reconnect_timeout=2,
                ) as client:
                    assert await client.submit(inc, 1) == 2
                    # Record a genuine handshake to replay, then the scheduler dies.
                    connection = Connection(await connect(address))
                    challenge = await connection.receive_one(m.Challenge)
                    nonce = os.urandom(16)
                    binding = ("client", "scheduler", challenge.nonce, nonce, challenge.server_id)
                    proof = handshake.peer_proof(TOKEN, *binding)
                    await connection.send(
                        [m.Hello("client", "x", m.PROTOCOL_VERSION, proof, nonce)]
                    )
                    welcome = await connection.receive_one(m.Welcome)
                    await connection.aclose()
                    scheduler.close()
                    rogue = Rogue(mode, tmp_path, recorded=(challenge, welcome))
                    await nursery.start(partial(rogue.serve, port=port))
                    pending = client.submit(inc, 2)
                    with pytest.raises(SchedulerLostError) as info:
                        await pending
            assert worker.lost_scheduler
            assert rogue.connections >= 2  # both tried the rogue, and kept away from it
            message = str(info.value)
            assert "could not reach it again: tried for" in message
            assert ATTACKS[mode] in message
            nursery.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []


# --- bad luck: a port that resets connections for a while -----------------------------


async def resetting_port(port, stop: trio.Event, *, task_status=trio.TASK_STATUS_IGNORED):
    """Accept on `port` and break every connection until `stop` is set: half of them
    reset at once (SO_LINGER 0), the others closed in the middle of the Challenge, as a
    restarting scheduler or a proxy would. Returns how many were broken."""
    listener = await listening_socket(port)
    challenge = b"".join(
        bytes(chunk)
        for chunk in packet_chunks(
            encode_batch([m.Challenge(os.urandom(16), "restarting", m.PROTOCOL_VERSION, True)])
        )
    )
    broken = 0
    with listener:
        task_status.started()
        with trio.move_on_after(30) as scope:  # a bound, should `stop` never come
            async with trio.open_nursery() as nursery:

                async def stop_when_told() -> None:
                    await stop.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(stop_when_told)
                while True:
                    sock, _ = await listener.accept()
                    with sock:
                        broken += 1
                        if broken % 2:
                            sock.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                        else:
                            await sock.send(challenge[: len(challenge) // 2])
        assert not scope.cancelled_caught
    return broken


async def test_clients_and_workers_ride_out_a_port_that_resets_connections(monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            scheduler = Scheduler(address, security=SECURITY)
            await nursery.start(scheduler.serve)
            worker = Worker(address, security=SECURITY, reconnect_timeout=20)
            await nursery.start(worker.serve)
            async with Client(
                address,
                asynchronous=True,
                set_as_default=False,
                security=TOKEN,
                reconnect_timeout=20,
            ) as client:
                assert await client.submit(inc, 1) == 2
                scheduler.close()
                stop = trio.Event()
                broken = 0

                async def break_connections(task_status=trio.TASK_STATUS_IGNORED) -> None:
                    nonlocal broken
                    broken = await resetting_port(port, stop, task_status=task_status)

                await nursery.start(break_connections)
                with trio.fail_after(10):
                    while client.status != "reconnecting":
                        await trio.sleep(0.01)
                pending = client.submit(inc, 10)  # queued while the scheduler is away
                await trio.sleep(2)
                stop.set()
                fresh = Scheduler(address, security=SECURITY)
                await nursery.start(fresh.serve)
                assert await pending == 11
                with trio.fail_after(20):
                    while worker.address not in fresh.state.workers:
                        await trio.sleep(0.01)
                assert client.status == "running"
                assert await client.submit(inc, 20) == 21
            assert not worker.lost_scheduler
            assert broken >= 4  # both kept knocking on the broken port, and kept going
            nursery.cancel_scope.cancel()
