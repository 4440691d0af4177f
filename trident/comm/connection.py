"""`Connection`: packets of typed messages over a byte stream, with limits enforced.

A connection is used by at most one sending task and one receiving task at a time
(actors send through a `BatchedSender`). Until `authenticated` is set, which the
handshake does, payloads are refused and `PREAUTH_LIMITS` apply: a stranger can make
the connection hold a few KiB, no more. Large envelopes are decoded in a worker thread,
so no message, however large, stops the event loop for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
import attrs

from ..protocol.errors import ProtocolError
from ..protocol.wire import (
    DEFAULT_MAX_CONTAINER_LEN,
    DEFAULT_MAX_ENVELOPE_BYTES,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_FRAMES,
    PREAUTH_MAX_BYTES,
    PREAUTH_MAX_CONTAINER_LEN,
    decode_batch,
    encode_batch,
    packet_chunks,
    parse_frame_count,
    parse_frame_lengths,
)
from .buffers import receive_buffer
from .streams import ByteStream, Frame, StreamClosed

_BUFFER_BYTES = 256 * 1024
#: Seconds a peer may leave a packet unfinished without sending another byte.
STALL_TIMEOUT = 30.0
#: Envelopes larger than this are decoded in a worker thread: decoding runs at roughly
#: 10-100 ns per msgpack object, so this bounds the event loop's pause to a few ms.
THREAD_DECODE_BYTES = 64 * 1024


class ConnectionClosed(Exception):
    """The peer closed the connection (cleanly, between packets)."""


@attrs.frozen
class Limits:
    """Bounds on what a peer may send in one packet, and how slowly.

    `max_frames`, `max_frame_bytes` and `max_envelope_bytes` are checked against the
    packet's prefix, before any memory is allocated for its frames. `max_container_len`
    bounds the elements of each msgpack array or map (checked before msgpack allocates
    it). `stall_timeout`: once a packet has begun, each read must bring more bytes within
    this many seconds (a peer may stay silent between packets as long as it likes).
    `buffer_bytes`: the reusable read buffer (bytes read ahead of the current packet stay
    in it). `thread_decode_bytes`: envelopes larger than this are decoded in a worker
    thread rather than in the event loop.
    """

    max_frames: int = DEFAULT_MAX_FRAMES
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES
    stall_timeout: float = STALL_TIMEOUT
    max_container_len: int = DEFAULT_MAX_CONTAINER_LEN
    buffer_bytes: int = _BUFFER_BYTES
    thread_decode_bytes: int = THREAD_DECODE_BYTES


#: The limits of authenticated connections that are given none (tests may replace it).
DEFAULT_LIMITS = Limits()

#: The limits of every connection before it is authenticated, in both directions: one
#: frame (payloads are refused anyway) of at most `PREAUTH_MAX_BYTES`, read through a
#: buffer of that size. Anything larger is refused on sight of the packet prefix.
PREAUTH_LIMITS = Limits(
    max_frames=1,
    max_frame_bytes=PREAUTH_MAX_BYTES,
    max_envelope_bytes=PREAUTH_MAX_BYTES,
    max_container_len=PREAUTH_MAX_CONTAINER_LEN,
    buffer_bytes=PREAUTH_MAX_BYTES,
    thread_decode_bytes=PREAUTH_MAX_BYTES,
)


class PacketReader:
    """Reads whole packets (lists of frames) from a stream through one reusable buffer.

    Small frames are copied out of the buffer; frames larger than the buffer are read
    straight into a buffer of their own. Waiting for the start of a packet is unbounded;
    a packet that stops arriving half way raises `ProtocolError` after the stall timeout.
    """

    def __init__(self, stream: ByteStream, limits: Limits):
        self._stream = stream
        self._limits = limits
        self._buffer = bytearray(limits.buffer_bytes)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """Apply other limits from the next packet on; the buffer keeps what it holds."""
        self._limits = limits
        if limits.buffer_bytes > len(self._buffer):
            held = self._view[self._start : self._end]
            buffer = bytearray(limits.buffer_bytes)
            buffer[: len(held)] = held
            self._buffer, self._view = buffer, memoryview(buffer)
            self._start, self._end = 0, len(held)

    async def _fill(self, n: int, *, at_boundary: bool = False) -> bool:
        """Make at least `n` bytes available; False on EOF at a packet boundary."""
        while self._end - self._start < n:
            if self._start and (self._end == self._start or len(self._buffer) - self._start < n):
                remaining = self._end - self._start
                self._view[:remaining] = self._view[self._start : self._end]
                self._start, self._end = 0, remaining
            idle = at_boundary and self._end == self._start
            view = self._view[self._end :]
            if idle:
                received = await self._stream.receive_into(view)
            else:
                received = await self._receive_more(view)
            if received == 0:
                if idle:
                    return False
                raise ProtocolError("connection closed in the middle of a packet")
            self._end += received
        return True

    async def _read(self, n: int) -> Frame:
        if n <= len(self._buffer):
            await self._fill(n)
            # A bytearray, not bytes: arrays unpickled from a payload frame are then
            # writable, as the sender's were (tasks write into their inputs, dask's
            # `store` into its target), whatever the frame's size.
            out = bytearray(self._view[self._start : self._start + n])
            self._start += n
            return out
        large = receive_buffer(n)
        target = memoryview(large)
        have = self._end - self._start
        target[:have] = self._view[self._start : self._end]
        self._start = self._end = 0
        while have < n:
            received = await self._receive_more(target[have:])
            if received == 0:
                raise ProtocolError("connection closed in the middle of a frame")
            have += received
        return large

    async def _receive_more(self, view: memoryview) -> int:
        """Receive the rest of a packet that has begun, within the stall timeout."""
        timeout = self._limits.stall_timeout
        try:
            with anyio.fail_after(timeout):
                return await self._stream.receive_into(view)
        except TimeoutError:
            raise ProtocolError(
                f"the peer sent nothing for {timeout:g} s in the middle of a packet"
            ) from None

    async def read_packet(self) -> list[Frame] | None:
        """The next packet's frames, or None if the peer closed between packets."""
        if not await self._fill(4, at_boundary=True):
            return None
        count = parse_frame_count(await self._read(4), self._limits.max_frames)
        lengths = parse_frame_lengths(
            await self._read(8 * count),
            count,
            max_frame_bytes=self._limits.max_frame_bytes,
            max_envelope_bytes=self._limits.max_envelope_bytes,
        )
        return [await self._read(n) for n in lengths]


class Connection:
    """Typed messages over a byte stream. `peer` names the other end in logs."""

    def __init__(self, stream: ByteStream, *, peer: str = "?", limits: Limits | None = None):
        """`limits` apply once the connection is authenticated (default `DEFAULT_LIMITS`,
        read then); before that, `PREAUTH_LIMITS` do."""
        self.stream = stream
        self.peer = peer
        self.closed = False
        self._limits = limits
        self._authenticated = False
        self._reader = PacketReader(stream, PREAUTH_LIMITS)

    @property
    def authenticated(self) -> bool:
        """Whether the handshake authenticated the peer: payloads and the full limits
        are accepted from then on."""
        return self._authenticated

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        self._authenticated = value
        self._reader.limits = (self._limits or DEFAULT_LIMITS) if value else PREAUTH_LIMITS

    async def send(self, messages: Sequence[Any]) -> None:
        """Write one packet holding `messages`. Raises `StreamClosed` if the peer is gone."""
        await self.send_chunks(packet_chunks(encode_batch(messages)))

    async def send_chunks(self, chunks: Sequence[Frame]) -> None:
        """Write chunks made by `packet_chunks` (or left over by `try_send`)."""
        if self.closed:
            raise StreamClosed(f"connection to {self.peer} is closed")
        for chunk in chunks:
            await self.stream.send_all(chunk)

    def try_send(self, messages: Sequence[Any]) -> list[Frame]:
        """Write one packet holding `messages` as far as possible without waiting.

        Returns the chunks still to write (empty when the whole packet went out); pass
        them to `send_chunks`, before anything else. Raises `StreamClosed`.
        """
        if self.closed:
            raise StreamClosed(f"connection to {self.peer} is closed")
        chunks = packet_chunks(encode_batch(messages))
        try_send = getattr(self.stream, "try_send", None)
        if try_send is None:
            return chunks
        for i, chunk in enumerate(chunks):
            size = chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
            written = try_send(chunk)
            if written < size:
                return [memoryview(chunk)[written:], *chunks[i + 1 :]]
        return []

    async def receive(self) -> list[Any]:
        """Read the next packet's messages.

        Raises `ConnectionClosed` when the peer closed cleanly, `ProtocolError` when it
        sent something invalid, `StreamClosed` when the connection broke.
        """
        frames = await self._reader.read_packet()
        if frames is None:
            raise ConnectionClosed(f"{self.peer} closed the connection")
        limits = self._reader.limits
        envelope = frames[0]
        size = envelope.nbytes if isinstance(envelope, memoryview) else len(envelope)
        decode = partial(
            decode_batch,
            frames,
            allow_payloads=self._authenticated,
            max_container_len=limits.max_container_len,
        )
        if size > limits.thread_decode_bytes:
            return await anyio.to_thread.run_sync(partial(decode, interruptible=True))
        return decode()

    async def receive_one(self, *types: type) -> Any:
        """Read a packet that must hold exactly one message of one of `types`."""
        messages = await self.receive()
        if len(messages) != 1 or not isinstance(messages[0], types):
            names = " or ".join(t.__name__ for t in types)
            got = ", ".join(type(m).__name__ for m in messages)
            raise ProtocolError(f"expected one {names}, got [{got}]")
        return messages[0]

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self.stream.aclose()

    def __repr__(self) -> str:
        return f"<Connection to {self.peer}>"
