"""BatchedSender coalesces a loop turn's messages; PeerPool multiplexes requests."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import trio

from trident.comm import handshake
from trident.comm.batched import BatchedSender
from trident.comm.connection import Connection
from trident.comm.rpc import PeerPool, PeerUnavailable
from trident.comm.streams import InprocStream
from trident.comm.transports import serve, unique_inproc_address
from trident.protocol import messages as m


class RecordingConnection:
    def __init__(self):
        self.packets = []
        self.peer = "recorder"

    async def send(self, messages):
        self.packets.append(list(messages))
        await trio.lowlevel.checkpoint()


async def test_messages_of_one_turn_share_a_packet():
    conn = RecordingConnection()
    sender = BatchedSender(conn)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        for i in range(100):
            sender.send(m.ReleaseKeys([str(i)]))
        sender.send_many([m.Goodbye("a"), m.Goodbye("b")])
        await sender.flush()
        assert len(conn.packets) == 1
        assert len(conn.packets[0]) == 102
        sender.send(m.Goodbye("later"))
        await sender.flush()
        assert len(conn.packets) == 2
        nursery.cancel_scope.cancel()


async def test_sender_stops_quietly_when_the_connection_breaks():
    a, b = InprocStream.pair("x")
    sender = BatchedSender(Connection(a))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        await b.aclose()
        sender.send(m.Goodbye("lost"))
        await sender.flush()
        assert sender.closed
        sender.send(m.Goodbye("dropped"))  # no error after close


async def test_peer_pool_matches_replies_to_concurrent_requests():
    async def worker(stream):
        conn = Connection(stream)
        await handshake.accept(conn, token="t", server_id="w", server_role="worker")
        while True:
            batch = await conn.receive()
            await trio.sleep(0.01)
            await conn.send([m.DataReply(msg.request_id, {}, msg.keys) for msg in reversed(batch)])

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, unique_inproc_address("pool"), worker)
        pool = PeerPool(nursery, role="peer", name="p", token="t")
        replies = {}

        async def ask(i):
            replies[i] = await pool.request(address, lambda rid: m.GetData(rid, [f"k{i}"]))

        async with trio.open_nursery() as asks:
            for i in range(20):
                asks.start_soon(ask, i)
        assert all(replies[i].missing == [f"k{i}"] for i in range(20))
        pool.close()
        nursery.cancel_scope.cancel()


async def test_peer_pool_reports_unreachable_peers():
    async with trio.open_nursery() as nursery:
        pool = PeerPool(nursery, role="peer", name="p", token=None)
        with pytest.raises(PeerUnavailable):
            await pool.request("inproc://nobody", lambda rid: m.GetData(rid, []))
        pool.close()


class Blob:
    """A message that can be watched through a weak reference."""


class DroppingConnection:
    """Takes packets and keeps none; `try_send` leaves one chunk for the sending task."""

    peer = "dropper"

    def __init__(self, chunk=None):
        self.chunk = chunk

    async def send(self, messages):
        await trio.lowlevel.checkpoint()

    async def send_chunks(self, chunks):
        await trio.lowlevel.checkpoint()

    def try_send(self, messages):
        return [self.chunk] if self.chunk is not None else []


async def test_a_written_packet_is_not_kept_while_the_sender_waits():
    conn = DroppingConnection()
    sender = BatchedSender(conn)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        blob = Blob()
        ref = weakref.ref(blob)
        sender.send(blob)
        await sender.flush()
        del blob
        assert ref() is None  # the sending task waits for the next packet without it
        nursery.cancel_scope.cancel()


async def test_a_written_backlog_is_not_kept_while_the_sender_waits():
    array = np.zeros(1000)
    conn = DroppingConnection(memoryview(array))
    sender = BatchedSender(conn)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        sender.send_now([m.Goodbye("x")])  # the connection leaves the chunk for later
        conn.chunk = None
        await sender.flush()
        ref = weakref.ref(array)
        del array
        assert ref() is None
        nursery.cancel_scope.cancel()


async def test_peer_pool_keeps_no_reply_after_handing_it_over():
    async def worker(stream):
        conn = Connection(stream)
        await handshake.accept(conn, token="t", server_id="w", server_role="worker")
        while True:
            batch = await conn.receive()
            await conn.send([m.DataReply(msg.request_id, {}, msg.keys) for msg in batch])

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, unique_inproc_address("pool"), worker)
        pool = PeerPool(nursery, role="peer", name="p", token="t")
        reply = await pool.request(address, lambda rid: m.GetData(rid, ["k"]))
        ref = weakref.ref(reply)
        del reply
        await trio.sleep(0.01)  # the receiving task is back to waiting for a packet
        assert ref() is None
        pool.close()
        nursery.cancel_scope.cancel()
