"""One conformance suite for every byte stream: tcp, tls and inproc under trio, tcp and tls
under asyncio."""

from __future__ import annotations

import asyncio
import os
from functools import partial

import numpy as np
import pytest
import trio

from trident.comm.address import AddressError, parse_address, parse_host_port
from trident.comm.buffers import MAPPED_BYTES, receive_buffer
from trident.comm.connection import Connection, ConnectionClosed
from trident.comm.transports import connect, serve, unique_inproc_address
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.serialize import dumps, loads

ADDRESSES = ["tcp://127.0.0.1:0", "tls://127.0.0.1:0", "inproc"]


def listen_address(kind: str) -> str:
    return unique_inproc_address("test") if kind == "inproc" else kind


@pytest.fixture
def contexts(tls_security):
    """(server, client) SSL contexts for tls:// addresses."""
    return tls_security.server_ssl_context(), tls_security.client_ssl_context()


async def echo(stream):
    buf = bytearray(1 << 16)
    view = memoryview(buf)
    while True:
        n = await stream.receive_into(view)
        if n == 0:
            return
        await stream.send_all(view[:n])


@pytest.mark.parametrize("kind", ADDRESSES)
async def test_streams_carry_bytes_both_ways(kind, contexts):
    server_context, client_context = contexts
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(serve, ssl_context=server_context), listen_address(kind), echo
        )
        stream = await connect(address, ssl_context=client_context)
        payload = os.urandom(3 * 2**20)
        received = bytearray()
        buf = memoryview(bytearray(1 << 20))

        async def reader():
            while len(received) < len(payload):
                n = await stream.receive_into(buf)
                assert n > 0
                received.extend(buf[:n])

        async with trio.open_nursery() as inner:
            inner.start_soon(reader)
            await stream.send_all(payload)
        assert bytes(received) == payload
        await stream.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", ADDRESSES)
async def test_connections_carry_messages_and_report_clean_close(kind, contexts):
    server_context, client_context = contexts

    async def handler(stream):
        conn = Connection(stream)
        conn.authenticated = True
        msgs = await conn.receive()
        await conn.send(msgs[::-1])
        await conn.aclose()

    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(serve, ssl_context=server_context), listen_address(kind), handler
        )
        conn = Connection(await connect(address, ssl_context=client_context))
        batch = [m.ReleaseKeys(["a"]), m.Goodbye("x"), m.CancelKeys(["b"], True)]
        await conn.send(batch)
        assert await conn.receive() == batch[::-1]
        with pytest.raises(ConnectionClosed):
            await conn.receive()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", ADDRESSES)
async def test_large_buffers_arrive_whole_and_outlive_the_connection(kind, contexts):
    """A frame past `MAPPED_BYTES` lands in a mapping of its own; the array unpickled
    from it is intact, writable and stays valid after the connection is gone."""
    server_context, client_context = contexts
    sent = np.random.default_rng(1).random(MAPPED_BYTES // 8 * 3 + 7)
    got: list[np.ndarray] = []

    async def handler(stream):
        conn = Connection(stream)
        conn.authenticated = True
        (msg,) = await conn.receive()
        got.append(loads(msg.value))
        await conn.send([m.Goodbye("done")])
        await conn.aclose()

    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(serve, ssl_context=server_context), listen_address(kind), handler
        )
        conn = Connection(await connect(address, ssl_context=client_context))
        conn.authenticated = True
        await conn.send([m.RunResult(1, dumps(sent), None)])
        assert await conn.receive() == [m.Goodbye("done")]
        await conn.aclose()
        nursery.cancel_scope.cancel()
    (array,) = got
    assert np.array_equal(array, sent)
    array[0] = -1.0  # writable, like a bytearray-backed one
    assert array[0] == -1.0


def test_receive_buffers_are_writable_and_sized():
    small, large = receive_buffer(10), receive_buffer(MAPPED_BYTES + 1)
    assert isinstance(small, bytearray)
    assert len(small) == 10
    view = memoryview(large)
    assert view.nbytes == MAPPED_BYTES + 1
    assert not view.readonly
    view[-1] = 7
    assert view[-1] == 7


async def test_connect_to_nothing_fails():
    with pytest.raises(OSError):  # noqa: PT011 (refused, or unreachable: it depends on the host)
        await connect("tcp://127.0.0.1:1")
    with pytest.raises(ConnectionRefusedError):
        await connect("inproc://nobody-listens-here")


def test_asyncio_tcp_stream():
    async def main():
        server_received = bytearray()

        async def on_client(reader, writer):
            server_received.extend(await reader.readexactly(5))
            writer.write(b"pong!")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stream = await connect(f"tcp://127.0.0.1:{port}")
        await stream.send_all(b"ping!")
        buf = memoryview(bytearray(10))
        n = await stream.receive_into(buf)
        assert bytes(buf[:n]) == b"pong!"
        await stream.aclose()
        server.close()
        await server.wait_closed()
        return bytes(server_received)

    assert asyncio.run(main()) == b"ping!"


async def test_truncated_packet_is_a_protocol_error():
    async def handler(stream):
        await stream.send_all(b"\x02\x00\x00\x00" + (5).to_bytes(8, "little"))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, "tcp://127.0.0.1:0", handler)
        conn = Connection(await connect(address))
        with pytest.raises(ProtocolError):
            await conn.receive()
        nursery.cancel_scope.cancel()


def test_address_parsing():
    assert parse_address("tcp://1.2.3.4:5") == ("tcp", "1.2.3.4:5")
    assert parse_address("localhost:80") == ("tcp", "localhost:80")
    assert parse_host_port("[::1]:8786") == ("::1", 8786)
    for bad in ["", "udp://x:1", "tcp://"]:
        with pytest.raises(AddressError):
            parse_address(bad)
    for bad in ["host:notaport", "host:70000", "host"]:
        with pytest.raises(AddressError):
            parse_host_port(bad)
