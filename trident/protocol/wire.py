"""Batches of messages <-> frames, and frames <-> packets on a byte stream.

A packet is ``u32 frame count | u64 length per frame | frames``. Frame 0 is the msgpack
envelope: an array of messages. `Serialized` payloads inside messages are msgpack
extension values: small pickles travel inline (extension 1), anything with out-of-band
buffers or a large pickle stream refers to frames of its own (extension 2), so big
buffers are never copied into the envelope.

Everything here is pure; the reading and writing of packets lives in `trident.comm`.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgpack

from .errors import InvalidBatch, InvalidRequest, ProtocolError
from .registry import decode, encode
from .serialize import Serialized

EXT_INLINE = 1
EXT_FRAMES = 2

#: A pickle stream larger than this leaves the envelope for a frame of its own.
INLINE_MAX_BYTES = 64 * 1024
#: Frames smaller than this are joined into one write; larger ones are written as they are.
COALESCE_MAX_BYTES = 64 * 1024

DEFAULT_MAX_FRAME_BYTES = 4 * 2**30
DEFAULT_MAX_ENVELOPE_BYTES = 256 * 2**20
DEFAULT_MAX_FRAMES = 1_000_000
#: Elements of one msgpack array or entries of one map, after authentication.
DEFAULT_MAX_CONTAINER_LEN = 2**24

#: Everything a peer may send before it is authenticated: one frame of at most this many
#: bytes per packet. The handshake messages take a few hundred bytes.
PREAUTH_MAX_BYTES = 16 * 1024
#: Elements of one array or map before authentication (a handshake message has < 10).
PREAUTH_MAX_CONTAINER_LEN = 256

_FRAME_REF = struct.Struct("<II")
_COUNT = struct.Struct("<I")

Frame = bytes | bytearray | memoryview


class _EnvelopePacker(threading.local):
    """One reusable msgpack `Packer` per thread.

    `msgpack.packb` makes a new `Packer`, whose buffer starts at 256 KiB. In worker
    processes ``MALLOC_TRIM_THRESHOLD_`` is set (see `trident.worker.native_threads`),
    which also fixes glibc's mmap threshold at 128 KiB, so each new buffer was an
    ``mmap`` and ``munmap`` pair plus page faults for every batch of messages: about a
    fifth of a worker's CPU per no-op task. A kept packer allocates once; one whose
    buffer grew past `KEPT_BUFFER_BYTES` for a large envelope is replaced, so that the
    thread does not hold that much memory for good.
    """

    KEPT_BUFFER_BYTES = 1 << 20

    def __init__(self) -> None:
        #: the frames of the batch being encoded (the envelope's extension values
        #: refer to them by index)
        self.frames: list[Frame] = []
        self.packer = self._new_packer()

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(default=self._default, use_bin_type=True, autoreset=True)

    def pack(self, encoded: list[Any], frames: list[Frame]) -> bytes:
        self.frames = frames
        try:
            envelope: bytes = self.packer.pack(encoded)
        finally:
            self.frames = []
        if len(envelope) > self.KEPT_BUFFER_BYTES:
            self.packer = self._new_packer()
        return envelope

    def _default(self, obj: Any) -> Any:
        if type(obj) is Serialized:
            header = obj.header
            if not obj.buffers and len(header) <= INLINE_MAX_BYTES:
                return msgpack.ExtType(EXT_INLINE, header)
            frames = self.frames
            first = len(frames)
            frames.append(header)
            frames.extend(obj.buffers)
            return msgpack.ExtType(EXT_FRAMES, _FRAME_REF.pack(first, 1 + len(obj.buffers)))
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"cannot encode {type(obj).__name__} in a message envelope")


_envelope = _EnvelopePacker()


def encode_batch(messages: Sequence[Any]) -> list[Frame]:
    """Encode messages into frames: the envelope first, then payload frames in order."""
    frames: list[Frame] = [b""]
    frames[0] = _envelope.pack([encode(m) for m in messages], frames)
    return frames


def decode_batch(
    frames: Sequence[Frame],
    *,
    allow_payloads: bool = True,
    max_container_len: int = DEFAULT_MAX_CONTAINER_LEN,
    interruptible: bool = False,
) -> list[Any]:
    """Decode the frames of one packet into messages; raises `ProtocolError` if invalid.

    With ``allow_payloads=False`` (used before a peer is authenticated) any payload
    extension is refused, so no pickled data is ever accepted from an unknown peer.
    An array or map announcing more than `max_container_len` elements is refused before
    msgpack allocates it (strings and bytes are bounded by the envelope's own size).

    Arrays decode as tuples, not lists, and become lists (as the message annotations
    say) only where a message is built from them. An empty array is then the shared
    ``()``, and a tuple of atomic values drops out of the garbage collector's tracking at
    the first young-generation collection it meets (a dict of atomic values is never
    tracked): an envelope of a million small arrays leaves the collector next to nothing
    to walk, where a million lists cost every later collection of their generation
    tens to hundreds of milliseconds, holding the GIL, whichever thread triggers it.

    msgpack decodes in C and holds the GIL throughout; ``interruptible=True`` (for
    decoding a large envelope in a worker thread) bounds how long it holds it at a time:
    every array and map passes through a Python function, so the interpreter can hand
    the GIL to the event loop's thread at its switch interval, and the envelope is
    decoded one message at a time, each checked as soon as it is read. So an invalid
    message ends the decoding where it stands, and no array of a million items ever
    exists whose freeing would hold the GIL for as long as it took to build.
    """
    if not frames:
        raise ProtocolError("empty packet")
    used: set[int] = set()

    def ext_hook(code: int, data: bytes) -> Any:
        if not allow_payloads:
            raise ProtocolError("serialized payloads are not accepted before authentication")
        if code == EXT_INLINE:
            return Serialized(data)
        if code == EXT_FRAMES:
            if len(data) != _FRAME_REF.size:
                raise ProtocolError("malformed payload frame reference")
            first, count = _FRAME_REF.unpack(data)
            if first < 1 or count < 1 or first + count > len(frames):
                raise ProtocolError(
                    f"payload refers to frames {first}..{first + count - 1} "
                    f"of a packet with {len(frames)} frames"
                )
            span = range(first, first + count)
            if not used.isdisjoint(span):
                raise ProtocolError("two payloads refer to the same frame")
            used.update(span)
            return Serialized(
                frames[first], [memoryview(f) for f in frames[first + 1 : first + count]]
            )
        raise ProtocolError(f"unknown extension type {code}")

    options: dict[str, Any] = {
        "ext_hook": ext_hook,
        "raw": False,
        "use_list": False,
        "strict_map_key": True,
        "max_array_len": max_container_len,
        "max_map_len": max_container_len,
    }
    if interruptible:
        return _decode_one_by_one(frames[0], options, max_container_len)
    try:
        envelope = msgpack.unpackb(frames[0], **options)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise _undecodable(exc) from None
    if type(envelope) is not tuple:
        raise ProtocolError(f"envelope must be an array, got {type(envelope).__name__}")
    return _decode_messages(envelope)


def _undecodable(exc: Exception) -> ProtocolError:
    return ProtocolError(f"undecodable envelope: {type(exc).__name__}: {exc}")


def _decode_one_by_one(envelope: Frame, options: dict[str, Any], max_len: int) -> list[Any]:
    """`_decode_messages` of the envelope, reading and checking one message at a time."""
    size = envelope.nbytes if isinstance(envelope, memoryview) else len(envelope)
    unpacker = msgpack.Unpacker(None, max_buffer_size=size, **options, **_INTERRUPTIBLE)
    unpacker.feed(envelope)
    try:
        count = unpacker.read_array_header()
    except Exception:
        raise ProtocolError("envelope must be an array") from None
    if count > max_len:
        raise ProtocolError(f"envelope announces {count} messages (limit {max_len})")
    items = _items(unpacker, count)
    messages = _decode_messages(items)
    if unpacker.tell() != size:
        raise ProtocolError(f"undecodable envelope: {size - unpacker.tell()} bytes of extra data")
    return messages


def _items(unpacker: msgpack.Unpacker, count: int) -> Iterator[Any]:
    for _ in range(count):
        try:
            yield unpacker.unpack()
        except ProtocolError:
            raise
        except Exception as exc:
            raise _undecodable(exc) from None


def _same(value: Any) -> Any:
    return value


_INTERRUPTIBLE: dict[str, Any] = {"list_hook": _same, "object_hook": _same}


def packet_prefix(frames: Sequence[Frame]) -> bytes:
    """The bytes that precede the frames of a packet: frame count and lengths."""
    lengths = [f.nbytes if isinstance(f, memoryview) else len(f) for f in frames]
    return struct.pack(f"<I{len(lengths)}Q", len(lengths), *lengths)


def packet_chunks(frames: Sequence[Frame]) -> list[Frame]:
    """The whole packet as a few writes: small pieces joined, large frames as they are."""
    chunks: list[Frame] = []
    pending: list[Frame] = [packet_prefix(frames)]
    pending_size = len(pending[0])
    for frame in frames:
        size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
        if size >= COALESCE_MAX_BYTES:
            chunks.append(b"".join(pending))
            chunks.append(frame)
            pending, pending_size = [], 0
        else:
            pending.append(frame)
            pending_size += size
    if pending:
        chunks.append(b"".join(pending) if len(pending) > 1 else pending[0])
    return chunks


def parse_frame_count(data: Frame, max_frames: int) -> int:
    (count,) = _COUNT.unpack(data)
    if count == 0 or count > max_frames:
        raise ProtocolError(f"packet announces {count} frames (limit {max_frames})")
    return count


def parse_frame_lengths(
    data: Frame, count: int, *, max_frame_bytes: int, max_envelope_bytes: int
) -> list[int]:
    lengths = list(struct.unpack(f"<{count}Q", data))
    if lengths[0] > max_envelope_bytes:
        raise ProtocolError(f"envelope of {lengths[0]} bytes exceeds {max_envelope_bytes}")
    for n in lengths:
        if n > max_frame_bytes:
            raise ProtocolError(f"frame of {n} bytes exceeds the limit of {max_frame_bytes}")
    return lengths


def _decode_messages(envelope: Iterable[Any]) -> list[Any]:
    """The messages of an envelope; `InvalidBatch` (after decoding the rest) when only
    requests failed validation, `ProtocolError` for anything else invalid."""
    messages = []
    rejected: list[InvalidRequest] = []
    for item in envelope:
        try:
            messages.append(decode(item))
        except InvalidRequest as exc:
            rejected.append(exc)
    if rejected:
        raise InvalidBatch(messages, rejected)
    return messages
