"""Batches <-> frames: payloads out of band, limits and garbage."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import msgpack
import numpy as np
import pytest

from trident.protocol import messages as m
from trident.protocol.errors import InvalidBatch, ProtocolError
from trident.protocol.serialize import dumps, loads
from trident.protocol.wire import (
    COALESCE_MAX_BYTES,
    EXT_FRAMES,
    decode_batch,
    encode_batch,
    packet_chunks,
    parse_frame_count,
    parse_frame_lengths,
)


def test_large_buffers_are_separate_frames_not_copied():
    array = np.arange(1_000_000, dtype="f8")
    payload = dumps(array)
    frames = encode_batch([m.DataReply(1, {"x": payload}, [])])
    assert len(frames) == 3  # envelope, pickle stream, the array's buffer
    assert len(frames[0]) < 200
    buffer_frame = frames[2]
    assert isinstance(buffer_frame, memoryview)
    assert np.shares_memory(np.frombuffer(buffer_frame, dtype="f8"), array)
    (reply,) = decode_batch([bytes(f) for f in frames])
    np.testing.assert_array_equal(loads(reply.data["x"]), array)


def test_small_payloads_stay_inline():
    frames = encode_batch([m.KeyDone("k", "int", 8, dumps(123))])
    assert len(frames) == 1
    (msg,) = decode_batch(frames)
    assert loads(msg.value) == 123


def test_many_messages_in_one_batch_keep_their_order():
    batch = [m.ReleaseKeys([str(i)]) for i in range(1000)]
    assert decode_batch(encode_batch(batch)) == batch


def test_invalid_requests_are_set_apart_from_the_valid_messages_of_a_batch():
    """A request with a wrong field type keeps its request id, so it can be answered;
    the other messages of its packet still decode."""
    good = [m.ReleaseKeys(["a"]), m.ListDatasets(7)]
    bad = m.UnpublishDataset(8, "not-a-list")  # type: ignore[arg-type]
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(encode_batch([good[0], bad, good[1]]))
    assert caught.value.messages == good
    [rejected] = caught.value.rejected
    assert rejected.request_id == 8
    assert "unpublish-dataset.names: expected array, got str" in rejected.reason
    # Anything that is not a request stays a plain protocol error.
    with pytest.raises(ProtocolError) as caught_plain:
        decode_batch(encode_batch([m.ReleaseKeys("a")]))  # type: ignore[arg-type]
    assert not isinstance(caught_plain.value, InvalidBatch)


def test_payloads_refused_before_authentication():
    frames = encode_batch([m.KeyDone("k", "int", 8, dumps(1))])
    with pytest.raises(ProtocolError, match="before authentication"):
        decode_batch(frames, allow_payloads=False)


@pytest.mark.parametrize(
    "frames",
    [
        [b"\xc1"],  # reserved msgpack byte
        [b"\x92\x01"],  # truncated array
        [msgpack.packb({"not": "a list"})],
        [
            msgpack.packb(
                [
                    [
                        "done",
                        "k",
                        "int",
                        8,
                        msgpack.ExtType(EXT_FRAMES, b"\x05\x00\x00\x00\x01\x00\x00\x00"),
                    ]
                ]
            )
        ],
        [msgpack.packb([["done", "k", "int", 8, msgpack.ExtType(EXT_FRAMES, b"xx")]])],
        [msgpack.packb([["done", "k", "int", 8, msgpack.ExtType(9, b"")]])],
        [],
    ],
)
def test_garbage_envelopes_raise_protocol_error(frames):
    with pytest.raises(ProtocolError):
        decode_batch(frames)


def test_two_payloads_may_not_share_a_frame():
    ref = msgpack.ExtType(EXT_FRAMES, b"\x01\x00\x00\x00\x01\x00\x00\x00")
    envelope = msgpack.packb([["done", "a", "t", 1, ref], ["done", "b", "t", 1, ref]])
    with pytest.raises(ProtocolError, match="same frame"):
        decode_batch([envelope, b"x"])


def test_frame_count_and_length_limits():
    with pytest.raises(ProtocolError, match="announces 0 frames"):
        parse_frame_count(b"\x00\x00\x00\x00", 10)
    with pytest.raises(ProtocolError, match="announces 11 frames"):
        parse_frame_count((11).to_bytes(4, "little"), 10)
    data = (100).to_bytes(8, "little") + (2**40).to_bytes(8, "little")
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        parse_frame_lengths(data, 2, max_frame_bytes=2**30, max_envelope_bytes=2**20)
    with pytest.raises(ProtocolError, match="envelope"):
        parse_frame_lengths(data, 2, max_frame_bytes=2**50, max_envelope_bytes=10)


def test_packet_chunks_join_small_pieces_and_keep_large_ones():
    big = memoryview(bytes(COALESCE_MAX_BYTES * 2))
    chunks = packet_chunks([b"envelope", b"small", big, b"tail"])
    assert len(chunks) == 3
    assert chunks[1] is big
    assert b"".join(bytes(c) for c in chunks).endswith(b"tail")


def test_containers_longer_than_the_limit_are_refused_before_allocation():
    # An array announcing 2**32 - 1 elements in five bytes: refused from its header.
    with pytest.raises(ProtocolError, match="exceeds max_array_len"):
        decode_batch([b"\xdd\xff\xff\xff\xff"], max_container_len=256)
    with pytest.raises(ProtocolError, match="exceeds max_map_len"):
        decode_batch([msgpack.packb([{str(i): i for i in range(300)}])], max_container_len=256)
    frames = encode_batch([m.Refused("x" * 100, b"")])
    assert decode_batch(frames, max_container_len=256) == [m.Refused("x" * 100, b"")]


def test_an_interruptible_decode_gives_the_same_messages():
    frames = encode_batch([m.KeyDone("k", "int", 8, dumps(123)), m.Refused("why", b"")])
    assert decode_batch(frames, interruptible=True) == decode_batch(frames)
    with pytest.raises(ProtocolError, match="unknown message tag"):
        decode_batch([msgpack.packb([[0, 1]] * 10_000)], interruptible=True)


def is_list_tree(value) -> bool:
    """Whether `value` holds no tuple, however deep."""
    if isinstance(value, tuple):
        return False
    if isinstance(value, list):
        return all(is_list_tree(x) for x in value)
    if isinstance(value, dict):
        return all(is_list_tree(x) for x in value.values())
    return True


@pytest.mark.parametrize("interruptible", [False, True])
def test_arrays_arrive_as_lists_wherever_a_message_holds_them(interruptible):
    # The envelope decodes arrays as tuples (the collector does not track those); the
    # messages built from them hold lists, as their annotations and their users expect.
    value = {"a": [1, [2, [3]]], "b": [], "c": [{"d": [4]}]}
    sent = [m.Reply(1, value, None), m.ReleaseKeys(["x", "y"]), m.Reply(2, [[1], []], None)]
    received = decode_batch(encode_batch(sent), interruptible=interruptible)
    assert received == sent
    assert all(is_list_tree(attr) for msg in received for attr in attrs_values(msg))
    assert type(received[1].keys) is list


def attrs_values(msg) -> list:
    return [getattr(msg, name) for name in msg._fields]


def test_an_interruptible_decode_stops_at_the_first_invalid_message():
    # The rest of the envelope (here: bytes msgpack cannot decode) is never read, so an
    # envelope of a million invalid items costs the decoding of one.
    envelope = b"\x92" + msgpack.packb(["bogus"]) + b"\xc1"
    with pytest.raises(ProtocolError, match="undecodable"):
        decode_batch([envelope])
    with pytest.raises(ProtocolError, match="unknown message tag 'bogus'"):
        decode_batch([envelope], interruptible=True)
    with pytest.raises(ProtocolError, match="extra data"):
        decode_batch([msgpack.packb([]) + b"\x90"], interruptible=True)
    with pytest.raises(ProtocolError, match="must be an array"):
        decode_batch([msgpack.packb({"a": 1})], interruptible=True)


# --- the reused envelope packer -----------------------------------------------------------


def test_batches_encoded_one_after_another_do_not_share_frames():
    big = np.arange(100_000, dtype="f8")
    first = encode_batch([m.DataReply(1, {"x": dumps(big)}, [])])
    second = encode_batch([m.DataReply(2, {"y": dumps(big + 1)}, [])])
    assert len(first) == len(second) == 3
    (reply,) = decode_batch([bytes(f) for f in second])
    np.testing.assert_array_equal(loads(reply.data["y"]), big + 1)


def test_a_batch_that_cannot_be_encoded_leaves_the_next_one_intact():
    with pytest.raises(TypeError, match="cannot encode object"):
        encode_batch([m.ReleaseKeys([object()])])  # type: ignore[list-item]
    batch = [m.ReleaseKeys(["a", "b"])]
    assert decode_batch(encode_batch(batch)) == batch


def test_threads_encode_at_the_same_time_without_mixing_payloads():
    def encode_many(offset: int) -> list[list[bytes]]:
        return [
            [bytes(f) for f in encode_batch([m.DataReply(i, {"x": dumps(np.full(10_000, i))}, [])])]
            for i in range(offset, offset + 50)
        ]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(encode_many, [0, 1000, 2000, 3000]))
    for offset, batches in zip([0, 1000, 2000, 3000], results, strict=True):
        for i, frames in enumerate(batches, start=offset):
            (reply,) = decode_batch(frames)
            assert reply.request_id == i
            np.testing.assert_array_equal(loads(reply.data["x"]), np.full(10_000, i))


def test_a_large_envelope_does_not_keep_its_buffer():
    from trident.protocol import wire

    packer = wire._envelope.packer
    encode_batch([m.ReleaseKeys(["k"])])
    assert wire._envelope.packer is packer  # small batches reuse the packer
    encode_batch([m.ReleaseKeys([f"key-{i}" for i in range(200_000)])])  # ~2.3 MB envelope
    assert wire._envelope.packer is not packer
