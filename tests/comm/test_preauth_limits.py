"""A connection before authentication: one frame of at most 16 KiB, refused from its prefix."""

from __future__ import annotations

import struct

import pytest
import trio

from trident.comm.connection import DEFAULT_LIMITS, PREAUTH_LIMITS, Connection
from trident.comm.streams import InprocStream
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.wire import PREAUTH_MAX_BYTES, encode_batch, packet_chunks


class CountingStream:
    """An in-process stream that counts the bytes its reader took."""

    def __init__(self, inner: InprocStream):
        self.inner = inner
        self.received = 0

    async def send_all(self, data):
        await self.inner.send_all(data)

    async def receive_into(self, view):
        n = await self.inner.receive_into(view)
        self.received += n
        return n

    async def aclose(self):
        await self.inner.aclose()


def pair() -> tuple[Connection, CountingStream, InprocStream]:
    server_end, client_end = InprocStream.pair("preauth")
    counting = CountingStream(server_end)
    return Connection(counting), counting, client_end


@pytest.mark.parametrize(
    ("prefix", "error"),
    [
        (struct.pack("<IQ", 1, PREAUTH_MAX_BYTES + 1), "exceeds 16384"),
        (struct.pack("<IQ", 1, 2**30), "exceeds 16384"),
        (struct.pack("<IQQ", 2, 10, 2**30), r"2 frames \(limit 1\)"),
    ],
)
async def test_a_large_packet_is_refused_from_its_prefix_before_authentication(prefix, error):
    connection, counting, peer = pair()
    await peer.send_all(prefix)
    with pytest.raises(ProtocolError, match=error):
        await connection.receive()
    assert counting.received == len(prefix)  # nothing beyond the prefix was there to read


async def test_the_read_buffer_is_small_until_authentication():
    connection, _, peer = pair()
    assert connection._reader.limits is PREAUTH_LIMITS
    assert len(connection._reader._buffer) == PREAUTH_MAX_BYTES
    await peer.send_all(
        b"".join(_packet(m.Refused("a", b""))) + b"".join(_packet(m.Refused("b", b"")))
    )
    assert await connection.receive() == [m.Refused("a", b"")]
    connection.authenticated = True  # what the handshake does
    assert connection._reader.limits is DEFAULT_LIMITS
    assert len(connection._reader._buffer) == DEFAULT_LIMITS.buffer_bytes
    # The packet read ahead into the small buffer survived the switch.
    assert await connection.receive() == [m.Refused("b", b"")]
    big = m.Refused("x" * (4 * PREAUTH_MAX_BYTES), b"")
    await peer.send_all(b"".join(_packet(big)))
    with trio.fail_after(5):
        assert await connection.receive() == [big]


def _packet(message):
    return [bytes(c) for c in packet_chunks(encode_batch([message]))]
