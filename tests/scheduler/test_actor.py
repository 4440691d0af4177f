"""The Scheduler actor under bad peers: each bad connection closes, the rest keep working."""

from __future__ import annotations

import logging
import os

import pytest
import trio

from trident import Client
from trident.comm import connection as connection_module
from trident.comm import handshake
from trident.comm.connection import Connection, ConnectionClosed, Limits
from trident.comm.streams import StreamClosed
from trident.comm.transports import connect
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.serialize import dumps
from trident.testing import in_process_cluster

from ..polling import wait_until


def inc(x):
    return x + 1


async def closed_by_server(conn: Connection) -> bool:
    """True if the server closes the connection (cleanly or not) instead of answering."""
    try:
        with trio.fail_after(5):
            await conn.receive()
            await conn.receive()
    except (ConnectionClosed, StreamClosed, ProtocolError):
        return True
    return False


@pytest.fixture
async def tcp_cluster():
    async with in_process_cluster(protocol="tcp", token="sesame") as cluster:
        yield cluster


async def raw_stream(cluster):
    return await connect(cluster.scheduler_address)


GARBAGE = [
    os.urandom(1000),
    b"\x00\x00\x00\x00",  # zero frames
    (2**31).to_bytes(4, "little"),  # absurd frame count
    b"\x01\x00\x00\x00" + (2**62).to_bytes(8, "little"),  # absurd frame length
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
async def test_garbage_closes_only_that_connection(tcp_cluster, garbage, caplog):
    caplog.set_level(logging.WARNING, logger="trident.scheduler")
    async with Client(tcp_cluster, asynchronous=True, set_as_default=False) as client:
        assert await client.submit(inc, 1) == 2
        stream = await raw_stream(tcp_cluster)
        conn = Connection(stream)
        await conn.receive_one(m.Challenge)
        await stream.send_all(garbage)
        assert await closed_by_server(conn)
        assert await client.submit(inc, 2) == 3  # the good client never noticed
    assert any("refused connection" in r.getMessage() for r in caplog.records)


async def test_bad_messages_after_authentication_close_the_connection(tcp_cluster, caplog):
    caplog.set_level(logging.WARNING, logger="trident.scheduler")
    async with Client(tcp_cluster, asynchronous=True, set_as_default=False) as client:
        for bad_batch in (
            [m.TaskFinished("x", 1, "int", 0.0, 0.0, None)],  # a worker-only message
            [
                m.UpdateGraph(
                    {},
                    [m.TaskSpec("k", "nofunc", dumps(1), [], 0, 0, None, False, None, None, None)],
                )
            ],
        ):
            conn = Connection(await raw_stream(tcp_cluster))
            await handshake.offer(conn, role="client", name="evil", token="sesame")
            await conn.send([m.RegisterClient("evil-client", "evil")])
            welcome = await conn.receive()
            assert isinstance(welcome[0], m.ClientWelcome)
            await conn.send(bad_batch)
            assert await closed_by_server(conn)
        assert await client.submit(inc, 3) == 4
    reasons = " ".join(r.getMessage() for r in caplog.records)
    assert "clients may not send TaskFinished" in reasons
    assert "undefined function" in reasons


async def test_a_wrong_token_is_refused_and_logged(tcp_cluster, caplog):
    caplog.set_level(logging.WARNING, logger="trident.scheduler")
    with pytest.raises(handshake.AuthenticationError, match="invalid cluster token"):
        async with Client(
            tcp_cluster.scheduler_address, asynchronous=True, security="wrong", set_as_default=False
        ):
            pass
    assert any("invalid cluster token" in r.getMessage() for r in caplog.records)


async def test_a_silent_peer_does_not_block_others(tcp_cluster, monkeypatch):
    monkeypatch.setattr(handshake, "HANDSHAKE_TIMEOUT", 0.2)
    silent = [await raw_stream(tcp_cluster) for _ in range(20)]
    async with Client(tcp_cluster, asynchronous=True, set_as_default=False) as client:
        assert await client.submit(inc, 5) == 6
    for stream in silent:
        conn = Connection(stream)
        await conn.receive_one(m.Challenge)
        assert await closed_by_server(conn)


async def test_a_peer_that_stalls_in_the_middle_of_a_packet_is_closed(
    tcp_cluster, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="trident.scheduler")
    monkeypatch.setattr(connection_module, "DEFAULT_LIMITS", Limits(stall_timeout=0.2))
    conn = Connection(await raw_stream(tcp_cluster))
    await handshake.offer(conn, role="client", name="loris", token="sesame")
    await conn.send([m.RegisterClient("loris", "loris")])
    await conn.receive()
    # One frame of 1,000 bytes is announced; ten arrive, then nothing.
    await conn.stream.send_all(b"\x01\x00\x00\x00" + (1000).to_bytes(8, "little") + b"x" * 10)
    assert await closed_by_server(conn)
    async with Client(tcp_cluster, asynchronous=True, set_as_default=False) as client:
        assert await client.submit(inc, 7) == 8
    assert any("in the middle of a packet" in r.getMessage() for r in caplog.records)


async def test_thousands_of_idle_connections_do_not_starve_real_clients(tcp_cluster, caplog):
    caplog.set_level(logging.WARNING, logger="trident.comm")
    idle = []
    with trio.fail_after(60):
        for _ in range(2000):
            idle.append(await trio.open_tcp_stream(*tcp_address(tcp_cluster)))
        async with Client(tcp_cluster, asynchronous=True, set_as_default=False) as client:
            assert await client.submit(inc, 9) == 10
        gate = tcp_cluster.scheduler._gate
        assert gate.pending <= gate.limit
        await wait_until(lambda: gate.evicted >= 2000 - gate.limit)
    for stream in idle:
        await stream.aclose()
    assert any("waiting for their handshake at once" in r.getMessage() for r in caplog.records)


def tcp_address(cluster):
    host, port = cluster.scheduler_address.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)
