"""Random and mutated frames and handshakes thrown at a live scheduler and worker.

Every bad peer must be disconnected with a logged reason, nothing may crash a
connection handler, the scheduler's invariants must hold, and a real client must keep
computing correct results throughout. Peers are plain blocking sockets, so the cluster
(in trident's background loop) sees exactly the bytes hypothesis made.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import socket
import struct
import types
import typing

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trident import Client, LocalCluster
from trident.comm import handshake
from trident.comm.connection import Limits
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.registry import MESSAGE_TYPES
from trident.protocol.serialize import Serialized, dumps
from trident.protocol.wire import (
    decode_batch,
    encode_batch,
    packet_chunks,
    parse_frame_count,
    parse_frame_lengths,
)
from trident.scheduler.state import SchedulerState

TOKEN = "fuzz-token"
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_ids = itertools.count()


def inc(x):
    return x + 1


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def target():
    records = Records()
    trident_logger = logging.getLogger("trident")
    trident_logger.addHandler(records)
    old_level = trident_logger.level
    trident_logger.setLevel(logging.INFO)
    cluster = LocalCluster(
        n_workers=1, processes=False, protocol="tcp", token=TOKEN, dashboard_address=None
    )
    client = Client(cluster, set_as_default=False)
    try:
        yield cluster, client, records
    finally:
        client.close()
        cluster.close()
        trident_logger.removeHandler(records)
        trident_logger.setLevel(old_level)


@pytest.fixture
def cluster(target):
    """The module's cluster; checks it stayed healthy after the test's examples."""
    cluster, client, records = target
    yield target
    assert not [r for r in records.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in records.records if r.levelno >= logging.ERROR
    ]

    validate(cluster)
    assert client.submit(inc, 1, pure=False).result(timeout=10) == 2


def validate(cluster) -> None:
    """Check the scheduler's invariants, in its own event loop."""

    async def check() -> None:
        cluster.scheduler.state.validate()

    cluster.loop_thread.run(check)


# --- a blocking peer ------------------------------------------------------------------


def address_of(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def packet(messages: list) -> bytes:
    return b"".join(bytes(chunk) for chunk in packet_chunks(encode_batch(messages)))


def raw_packet(frames: list[bytes]) -> bytes:
    return struct.pack(f"<I{len(frames)}Q", len(frames), *map(len, frames)) + b"".join(frames)


def receive_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def receive_packet(sock: socket.socket) -> list:
    (count,) = struct.unpack("<I", receive_exactly(sock, 4))
    lengths = struct.unpack(f"<{count}Q", receive_exactly(sock, 8 * count))
    return decode_batch([receive_exactly(sock, n) for n in lengths])


def hello_packet(challenge: m.Challenge, role: str, server_role: str) -> bytes:
    nonce = os.urandom(16)
    signed = handshake.peer_proof(
        TOKEN, role, server_role, challenge.nonce, nonce, challenge.server_id
    )
    return packet([m.Hello(role, "fuzzer", m.PROTOCOL_VERSION, signed, nonce)])


def connect(url: str) -> tuple[socket.socket, m.Challenge]:
    sock = socket.create_connection(address_of(url), timeout=10)
    (challenge,) = receive_packet(sock)
    return sock, challenge


def authenticate(url: str, role: str, server_role: str) -> socket.socket:
    sock, challenge = connect(url)
    sock.sendall(hello_packet(challenge, role, server_role))
    (welcome,) = receive_packet(sock)
    assert isinstance(welcome, m.Welcome)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Half-close our side; True once the server closes too (within 10 s)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass  # reset by the server: closed all the same
    finally:
        sock.close()
    return True


# --- what the server must make of bytes -----------------------------------------------


def decodes(data: bytes, *, authenticated: bool) -> list | None:
    """The messages in `data` if every packet in it is valid and complete, else None."""
    limits = Limits()
    messages = []
    offset = 0
    try:
        while offset < len(data):
            count = parse_frame_count(data[offset : offset + 4], limits.max_frames)
            offset += 4
            if offset + 8 * count > len(data):
                return None
            lengths = parse_frame_lengths(
                data[offset : offset + 8 * count],
                count,
                max_frame_bytes=limits.max_frame_bytes,
                max_envelope_bytes=limits.max_envelope_bytes,
            )
            offset += 8 * count
            frames = []
            for n in lengths:
                if offset + n > len(data):
                    return None
                frames.append(data[offset : offset + n])
                offset += n
            messages.extend(decode_batch(frames, allow_payloads=authenticated))
    except (ProtocolError, struct.error):
        return None
    return messages


def valid_hello(messages: list | None, challenge: m.Challenge, server_role: str) -> bool:
    """Whether `messages` complete the handshake (a mutated name still does; the proof
    binds the nonces, so a mutated nonce does not)."""
    if not messages or not isinstance(messages[0], m.Hello):
        return False
    hello = messages[0]
    expected = handshake.peer_proof(
        TOKEN, hello.role, server_role, challenge.nonce, hello.nonce, challenge.server_id
    )
    return (
        hello.protocol == m.PROTOCOL_VERSION
        and hello.role in ("client", "worker", "peer", "nanny")
        and len(hello.nonce) == handshake.NONCE_BYTES
        and hmac.compare_digest(hello.proof, expected)
    )


def until_goodbye(messages: list) -> list:
    """The messages a scheduler reads: it stops at a `Goodbye`."""
    kinds = [type(msg) for msg in messages]
    return messages[: kinds.index(m.Goodbye)] if m.Goodbye in kinds else messages


def check_disconnected(records, before: int, *, must_log: bool) -> None:
    """The server closed the connection; if the input was bad, it logged why."""
    if must_log:
        new = records.records[before:]
        assert any(r.levelno >= logging.WARNING for r in new), [r.getMessage() for r in new]


# --- strategies ----------------------------------------------------------------------

SMALL_INTS = st.integers(-3, 40)
KEYS = st.sampled_from(["inc-1", "x", "", "y-2", "fuzz-key"])
PLAIN = st.one_of(st.none(), st.booleans(), SMALL_INTS, st.text(max_size=8), st.binary(max_size=8))
PAYLOADS = st.builds(dumps, st.one_of(SMALL_INTS, st.text(max_size=8), st.just(inc)))


def value_of(tp: typing.Any) -> st.SearchStrategy:
    """Values of a message field's type, kept small (no task may retry for ever)."""
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return st.one_of(PLAIN, st.lists(PLAIN, max_size=3))
    if origin in (typing.Union, types.UnionType):
        (inner,) = [t for t in typing.get_args(tp) if t is not type(None)]
        return st.one_of(st.none(), value_of(inner))
    if tp is str:
        return st.one_of(KEYS, st.text(max_size=12))
    if tp is int:
        return SMALL_INTS
    if tp is float:
        return st.floats(-1, 5, allow_nan=False)
    if tp is bool:
        return st.booleans()
    if tp is bytes:
        return st.binary(max_size=16)
    if tp is Serialized:
        return PAYLOADS
    if origin is list:
        return st.lists(value_of(typing.get_args(tp)[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(KEYS, value_of(typing.get_args(tp)[1]), max_size=3)
    return message_of(tp)


def message_of(cls: type) -> st.SearchStrategy:
    hints = typing.get_type_hints(cls)
    fields = [name for name in hints if name != "tag"]
    return st.builds(cls, *[value_of(hints[name]) for name in fields])


#: Every message type but those that stop the cluster's work on purpose: any client may
#: restart the cluster (which cancels the futures of the real client too) or retire its
#: only worker, and neither is a fault.
FUZZED_TYPES = sorted(
    (
        cls
        for cls in MESSAGE_TYPES.values()
        if cls not in (m.RestartRequest, m.RetireWorkersRequest)
    ),
    key=lambda c: c.tag,
)
MESSAGES = st.sampled_from(FUZZED_TYPES).flatmap(message_of)
#: Messages clients may send, so that the scheduler's handlers see many of them.
CLIENT_MESSAGES = st.sampled_from(
    [cls for cls in FUZZED_TYPES if cls in SchedulerState()._client_handlers]
).flatmap(message_of)
FRAMES = st.lists(st.binary(max_size=64), min_size=1, max_size=4).map(raw_packet)
ENVELOPES = st.lists(
    st.lists(st.one_of(st.sampled_from(sorted(MESSAGE_TYPES)), PLAIN), min_size=1, max_size=6),
    max_size=3,
).map(lambda items: raw_packet([__import__("msgpack").packb(items)]))


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """`valid` with a few bytes flipped, inserted, dropped, or cut short."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


# --- the tests ----------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_bad_handshakes_are_refused_with_a_reason(cluster, data):
    cluster_, client, records = cluster
    to_scheduler = data.draw(st.booleans())
    url = cluster_.scheduler_address if to_scheduler else worker_url(cluster_)
    server_role = "scheduler" if to_scheduler else "worker"
    sock, challenge = connect(url)
    role = data.draw(st.sampled_from(["client", "worker", "peer", "nanny"]))
    payload = data.draw(
        st.one_of(
            st.binary(max_size=256),
            FRAMES,
            ENVELOPES,
            mutated(hello_packet(challenge, role, server_role)),
            MESSAGES.map(lambda msg: packet([msg])),
        )
    )
    before = len(records.records)
    sock.sendall(payload)
    assert closed_by_server(sock)
    accepted = valid_hello(decodes(payload, authenticated=False), challenge, server_role)
    check_disconnected(records, before, must_log=bool(payload) and not accepted)
    assert client.submit(inc, 2, pure=False).result(timeout=10) == 3


@FUZZ
@given(data=st.data())
def test_bad_messages_from_registered_clients_close_only_their_connection(cluster, data):
    cluster_, client, records = cluster
    sock = authenticate(cluster_.scheduler_address, "client", "scheduler")
    client_id = f"fuzz-{next(_ids)}"
    sock.sendall(packet([m.RegisterClient(client_id, "fuzzer")]))
    assert isinstance(receive_packet(sock)[0], m.ClientWelcome)
    valid = packet(
        data.draw(st.lists(st.one_of(CLIENT_MESSAGES, MESSAGES), min_size=1, max_size=8))
    )
    payload = data.draw(st.one_of(FRAMES, ENVELOPES, mutated(valid), st.just(valid)))
    messages = decodes(payload, authenticated=True)
    before = len(records.records)
    sock.sendall(payload + packet([m.Goodbye("done")]))
    assert closed_by_server(sock)
    allowed = cluster_.scheduler.state._client_handlers
    read = until_goodbye(messages) if messages is not None else None
    if read is not None:
        for msg in read:
            event(f"{type(msg).__name__} {'allowed' if type(msg) in allowed else 'refused'}")
    check_disconnected(
        records,
        before,
        must_log=read is None or any(type(msg) not in allowed for msg in read),
    )
    validate(cluster_)
    assert client.submit(inc, 3, pure=False).result(timeout=10) == 4


@FUZZ
@given(data=st.data())
def test_bad_requests_to_a_worker_close_only_their_connection(cluster, data):
    cluster_, client, records = cluster
    sock = authenticate(worker_url(cluster_), "peer", "worker")
    valid = packet(data.draw(st.lists(MESSAGES, min_size=1, max_size=3)))
    payload = data.draw(st.one_of(FRAMES, ENVELOPES, mutated(valid), st.just(valid)))
    messages = decodes(payload, authenticated=True)
    before = len(records.records)
    sock.sendall(payload)
    assert closed_by_server(sock)
    served = (
        *(m.GetData, m.PutData, m.LogsRequest, m.ActorCall, m.ActorCancel, m.RunFunction),
        *(m.CallStackRequest, m.TaskQueueRequest, m.ProfileRequest, m.VersionsRequest),
    )
    check_disconnected(
        records,
        before,
        must_log=messages is None or any(type(msg) not in served for msg in messages),
    )
    assert client.submit(inc, 4, pure=False).result(timeout=10) == 5


def worker_url(cluster) -> str:
    (handle,) = cluster.workers.values()
    return handle.address
