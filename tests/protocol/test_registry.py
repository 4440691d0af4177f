"""Message classes: generated codecs round-trip and validate every field."""

from __future__ import annotations

import msgpack
import pytest

from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.registry import MESSAGE_TYPES, decode, encode, message
from trident.protocol.serialize import dumps


def sample_messages():
    payload = dumps({"a": 1})
    info = m.WorkerInfo("tcp://127.0.0.1:1", "w", 2, 1000, {"GPU": 1.0})
    spec = m.TaskSpec(
        "k-1", "tok", payload, ["d-1"], 3, 1, ["w"], True, {"GPU": 1.0}, 2.5, m.ActorOptions(1, 8)
    )
    error = m.ErrorInfo(payload, None, "ValueError: x", "tcp://w")
    return [
        m.Challenge(b"n" * 16, "s", 1, True),
        m.Hello("client", "c", 1, b"p", b"n"),
        m.UpdateGraph({"tok": payload}, [spec]),
        m.RegisterWorker(info, {"x-1": 8}),
        m.KeyDone("k", "int", 8, None),
        m.KeyErred("k", error),
        m.RunTask("k", "tok", payload, {"d": ["tcp://a"]}, [0, 1], True, None, None, None, 0),
        m.Reply(7, {"nested": [1, 2.5, "x", None]}, None),
        m.TaskFinished("k", 8, "int", 1.0, 2.0, payload),
    ]


@pytest.mark.parametrize("msg", sample_messages(), ids=lambda msg: type(msg).__name__)
def test_round_trip(msg):
    assert decode(encode(msg)) == msg


def test_every_message_has_a_unique_tag():
    tags = [cls.tag for cls in MESSAGE_TYPES.values()]
    assert len(tags) == len(set(tags))


def test_duplicate_tag_is_rejected():
    with pytest.raises(ValueError, match=r"already|used"):

        @message("done")
        class Again:
            key: str


def test_float_fields_accept_integers():
    raw = encode(m.TaskFinished("k", 8, "int", 1.0, 2.0, None))
    raw[4] = 1
    assert decode(raw).start == 1.0


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (["done", "k", "int", 8], "expected 4 fields"),
        (["done", 5, "int", 8, None], "done.key: expected str"),
        (["done", "k", "int", "8", None], "done.nbytes: expected int"),
        (["done", "k", "int", True, None], "done.nbytes: expected int"),
        (["done", "k", "int", 8, b"raw"], "done.value: expected Serialized"),
        (["nope", 1], "unknown message tag"),
        ([17], "unknown message tag"),
        ([], "non-empty array"),
        ("done", "non-empty array"),
        (["release", ["a", 3]], r"release.keys\[\]: expected str"),
        (["who-has", 1, {"a": 1}], "expected array"),
        (["reg-worker", ["tcp://a", "w", 1, 0], {}], "expected 5 fields"),
    ],
)
def test_invalid_messages_raise_protocol_error(raw, match):
    with pytest.raises(ProtocolError, match=match):
        decode(raw)


def test_map_keys_must_be_strings():
    with pytest.raises(ProtocolError, match="map keys"):
        decode(["reg-worker", ["wi", "tcp://a", "w", 1, 0, {}], {1: 2}])


def test_encoded_form_is_plain_msgpack():
    packed = msgpack.packb(encode(m.ReleaseKeys(["a", "b"])))
    assert msgpack.unpackb(packed) == ["release", ["a", "b"]]


def test_decoders_take_tuples_and_give_lists():
    msg = decode(("release", ("a", "b")))
    assert msg == m.ReleaseKeys(["a", "b"])
    assert type(msg.keys) is list
    reply = decode(("reply", 1, {"v": ((1, ()), (2,))}, None))
    assert reply.value == {"v": [[1, []], [2]]}
    assert type(reply.value["v"][0][1]) is list
