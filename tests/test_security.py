"""Nobody without the cluster's credentials gets code run on it.

Every attack below carries a payload whose unpickling creates a file. Each attacker is
refused with a clear error on its own side, and the file never appears; a control shows
the same payload does create its file once it is let in.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import trio

from trident import AuthenticationError, Client, Scheduler, Security, Worker
from trident.comm import handshake
from trident.comm.connection import Connection, ConnectionClosed
from trident.comm.streams import StreamClosed
from trident.comm.tls import TLSError
from trident.comm.transports import connect
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.serialize import dumps
from trident.protocol.wire import encode_batch, packet_chunks

TOKEN = "sesame"


class LeavesFile:
    """Unpickling this creates a file: the stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.touch, (self.path,))


def identity(x):
    return x


def evil_graph(path):
    """An `UpdateGraph` whose function, once unpickled on a worker, creates `path`."""
    spec = m.TaskSpec("evil-1", "evil", dumps(((), {})), [], 0, 0, None, False, None, None, None)
    return m.UpdateGraph({"evil": dumps(LeavesFile(path))}, [spec])


def evil_put(path):
    """A `PutData` whose value, once unpickled on a worker, creates `path`."""
    return m.PutData(1, {"evil": dumps(LeavesFile(path))})


def packet(*messages) -> bytes:
    return b"".join(bytes(chunk) for chunk in packet_chunks(encode_batch(list(messages))))


class Recorder:
    """A byte stream that keeps a copy of everything sent through it."""

    def __init__(self, stream):
        self.stream = stream
        self.peer = "recorder"
        self.sent: list[bytes] = []

    async def send_all(self, data):
        self.sent.append(bytes(data))
        await self.stream.send_all(data)

    async def receive_into(self, view):
        return await self.stream.receive_into(view)

    async def aclose(self):
        await self.stream.aclose()


async def refusal(connection: Connection) -> str:
    """The reason in the server's `Refused`, or how the connection ended."""
    try:
        with trio.fail_after(5):
            return (await connection.receive_one(m.Refused, m.Welcome)).reason
    except (ConnectionClosed, StreamClosed, ProtocolError) as exc:
        return f"closed: {exc}"


@pytest.fixture
async def cluster():
    security = Security(token=TOKEN)
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(Scheduler("tcp://127.0.0.1:0", security=security).serve)
        worker = await nursery.start(Worker(scheduler.address, security=security).serve)
        yield scheduler, worker
        nursery.cancel_scope.cancel()


async def control(address, tmp_path, **client_options):
    """The payloads do create their files once authenticated (so the attacks mean it)."""
    through_client = tmp_path / "control-client"
    through_raw = tmp_path / "control-raw"
    async with Client(address, asynchronous=True, set_as_default=False, **client_options) as c:
        assert await c.submit(identity, LeavesFile(through_client)) is None
        connection = Connection(await connect(address, ssl_context=c._core._ssl_context))
        await handshake.offer(connection, role="client", name="control", token=TOKEN)
        await connection.send([m.RegisterClient("control-raw", "control")])
        welcome = await connection.receive()  # ClientWelcome, then SchedulerServices
        assert isinstance(welcome[0], m.ClientWelcome)
        await connection.send([evil_graph(through_raw)])
        with trio.fail_after(10):
            while not through_raw.exists():
                await trio.sleep(0.01)
        await connection.aclose()
    assert through_client.exists()


async def test_unauthenticated_peers_are_refused_and_run_nothing(cluster, tmp_path, monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    scheduler, worker = cluster
    marks = {name: tmp_path / name for name in ("wrong", "none", "garbage", "replay", "worker")}
    client_options = {"asynchronous": True, "set_as_default": False}

    with trio.fail_after(30):
        # A client with a wrong token, and with none.
        with pytest.raises(AuthenticationError, match="invalid cluster token"):
            async with Client(scheduler.address, security="guess", **client_options):
                pass
        with pytest.raises(AuthenticationError, match="requires a cluster token"):
            async with Client(scheduler.address, **client_options):
                pass

        # A raw peer with a wrong proof that sends its payload right after the Hello.
        connection = Connection(await connect(scheduler.address))
        challenge = await connection.receive_one(m.Challenge)
        assert challenge.auth_required
        await connection.stream.send_all(
            packet(m.Hello("client", "evil", m.PROTOCOL_VERSION, b"x" * 32, os.urandom(16)))
            + packet(m.RegisterClient("evil", "evil"), evil_graph(marks["wrong"]))
        )
        assert await refusal(connection) == "invalid cluster token"

        # A raw peer that skips the Hello and sends its payload at once.
        connection = Connection(await connect(scheduler.address))
        await connection.receive_one(m.Challenge)
        await connection.send([m.RegisterClient("evil", "evil"), evil_graph(marks["none"])])
        reason = await refusal(connection)
        assert reason.startswith("invalid handshake:")
        assert "before authentication" in reason

        # Garbage instead of a handshake, with the payload behind it.
        connection = Connection(await connect(scheduler.address))
        await connection.receive_one(m.Challenge)
        await connection.stream.send_all(
            b"\xff" * 64 + packet(m.RegisterClient("evil", "evil"), evil_graph(marks["garbage"]))
        )
        assert (await refusal(connection)).startswith("invalid handshake:")

        # A recorded valid Hello replayed against a fresh challenge.
        recorder = Recorder(await connect(scheduler.address))
        legit = Connection(recorder)
        await handshake.offer(legit, role="client", name="legit", token=TOKEN)
        (hello_packet,) = recorder.sent
        await legit.aclose()
        connection = Connection(await connect(scheduler.address))
        await connection.receive_one(m.Challenge)
        await connection.stream.send_all(
            hello_packet + packet(m.RegisterClient("evil", "evil"), evil_graph(marks["replay"]))
        )
        assert await refusal(connection) == "invalid cluster token"

        # Workers guard their own port the same way (PutData unpickles there).
        connection = Connection(await connect(worker.address))
        await connection.receive_one(m.Challenge)
        await connection.stream.send_all(
            packet(m.Hello("peer", "evil", m.PROTOCOL_VERSION, b"x" * 32, os.urandom(16)))
            + packet(evil_put(marks["worker"]))
        )
        assert await refusal(connection) == "invalid cluster token"

        await control(scheduler.address, tmp_path, security=TOKEN)
    assert [name for name, path in marks.items() if path.exists()] == []


@pytest.fixture
async def tls_cluster(tls_security):
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(
            Scheduler("tls://127.0.0.1:0", security=tls_security.with_token(TOKEN)).serve
        )
        worker = Worker(scheduler.address, security=tls_security.with_token(TOKEN))
        await nursery.start(worker.serve)
        yield scheduler
        nursery.cancel_scope.cancel()


async def test_peers_without_tls_credentials_are_refused(
    tls_cluster, tls_security, tmp_path, monkeypatch
):
    monkeypatch.setattr(handshake, "HANDSHAKE_TIMEOUT", 0.5)
    plain_address = tls_cluster.address.replace("tls://", "tcp://")
    mark = tmp_path / "plain"
    options = {"asynchronous": True, "set_as_default": False}
    with trio.fail_after(30):
        # A plain-TCP client (with the right token!) gets no handshake, and is told why.
        with pytest.raises(AuthenticationError, match=r"did not complete the handshake.*tls://"):
            async with Client(plain_address, security=TOKEN, **options):
                pass
        # A plain-TCP peer that just sends its payload gets the connection closed.
        stream = await connect(plain_address)
        await stream.send_all(packet(m.RegisterClient("evil", "evil"), evil_graph(mark)))
        with trio.fail_after(5):
            while await stream.receive_into(memoryview(bytearray(1024))):
                pass
        await stream.aclose()
        # TLS without a client certificate, and with a certificate from another CA.
        no_certificate = Security(token=TOKEN, tls_ca_file=tls_security.tls_ca_file)
        with pytest.raises(AuthenticationError, match="closed the connection during the handshake"):
            async with Client(tls_cluster.address, security=no_certificate, **options):
                pass
        stranger = Security.self_signed(tmp_path / "stranger", token=TOKEN)
        with pytest.raises(TLSError, match="not signed by the cluster's CA"):
            async with Client(tls_cluster.address, security=stranger, **options):
                pass
        await control(tls_cluster.address, tmp_path, security=tls_security.with_token(TOKEN))
    assert not mark.exists()


async def test_scheduler_file_tls_credentials_serve_trio_and_asyncio(
    tls_cluster, tls_security, tmp_path
):
    path = tmp_path / "scheduler.json"
    with trio.fail_after(30):
        async with Client(
            tls_cluster.address,
            security=tls_security.with_token(TOKEN),
            asynchronous=True,
            set_as_default=False,
        ) as client:
            client.write_scheduler_file(str(path))
        assert os.stat(path).st_mode & 0o777 == 0o600
        async with Client(scheduler_file=str(path), asynchronous=True, set_as_default=False) as c:
            assert await c.submit(identity, 5) == 5

        async def under_asyncio():
            async with Client(
                scheduler_file=str(path), asynchronous=True, set_as_default=False
            ) as client:
                big = client.submit(list, range(100_000))  # fetched from the worker over TLS
                return len(await big)

        assert await trio.to_thread.run_sync(asyncio.run, under_asyncio()) == 100_000
