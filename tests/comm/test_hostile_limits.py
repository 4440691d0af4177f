"""Hostile peers against every listener, while a legitimate client keeps working.

Each attack runs against an in-process cluster over TCP (scheduler, worker peer port and
dashboard all live in this process, so this process' resident set is the one under
attack). Each test asserts that the offending connections are closed, that the resident
set grows by less than `RSS_BUDGET` and that a legitimate submit -> result round trip
keeps a median under `RTT_BUDGET` while the attack runs. (The nanny listens on nothing:
it is attacked as the connecting side, by a rogue scheduler.)
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import psutil
import pytest
import trio
import trio.lowlevel

from trident import Client
from trident.comm import connection as connection_module
from trident.comm import handshake
from trident.comm.connection import Connection, ConnectionClosed, Limits
from trident.comm.streams import StreamClosed
from trident.comm.transports import connect
from trident.dashboard import http
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError
from trident.protocol.wire import PREAUTH_MAX_BYTES
from trident.testing import in_process_cluster
from trident.worker.nanny import Nanny

RSS_BUDGET = 50 * 2**20
RTT_BUDGET = 0.050
MiB = 2**20


def inc(x):
    return x + 1


# --- payloads ------------------------------------------------------------------------


def _array32(count: int, items: bytes) -> bytes:
    return b"\xdd" + struct.pack(">I", count) + items


#: An 8 MiB envelope of empty arrays: 8 Mi Python lists (~600 MB) if decoded.
BOMB_ENVELOPE = _array32(8 * MiB, b"\x90" * (8 * MiB))
BOMB_PACKET = struct.pack("<IQ", 1, len(BOMB_ENVELOPE)) + BOMB_ENVELOPE


def packet_prefix(*lengths: int) -> bytes:
    return struct.pack(f"<I{len(lengths)}Q", len(lengths), *lengths)


# --- measuring -----------------------------------------------------------------------


class PeakRss:
    """The peak resident set of this process, sampled every 5 ms by a thread (the event
    loop may be the thing that stalls)."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        gc.collect()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def round_trip(client: Client, i: int) -> float:
    start = time.perf_counter()
    assert await client.submit(inc, i, pure=False) == i + 1
    return time.perf_counter() - start


async def under_attack(
    client: Client, attack: Callable[[], Awaitable[Any]], *, rounds: int = 9
) -> tuple[Any, float, int]:
    """Run `attack` while measuring round trips every 20 ms; returns its result, the
    median round trip and the peak growth of the resident set."""
    for i in range(3):  # warm up: the first round trips import and connect
        await round_trip(client, i)
    times: list[float] = []
    result: list[Any] = []
    with PeakRss() as rss:
        async with trio.open_nursery() as nursery:

            async def run_attack() -> None:
                result.append(await attack())

            nursery.start_soon(run_attack)
            for i in range(rounds):
                await trio.sleep(0.02)
                times.append(await round_trip(client, i))
    return result[0], statistics.median(times), rss.growth


def assert_within_budgets(median: float, growth: int) -> None:
    assert growth < RSS_BUDGET, f"resident set grew by {growth / MiB:.0f} MiB"
    assert median < RTT_BUDGET, f"median round trip {median * 1000:.1f} ms under attack"


async def closed_by_peer(stream: trio.SocketStream, within: float = 5.0) -> bool:
    """Read (and drop) until the other side closes or resets; False if it stays open."""
    with trio.move_on_after(within):
        try:
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return True
    return False


async def send_until_closed(stream: trio.SocketStream, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(data)


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
async def cluster():
    async with in_process_cluster(protocol="tcp", token="sesame", dashboard_address=0) as c:
        yield c


@pytest.fixture
async def client(cluster):
    async with Client(cluster, asynchronous=True, set_as_default=False) as c:
        yield c


def host_port(address: str) -> tuple[str, int]:
    host, port = address.split("://")[-1].rsplit(":", 1)
    return host, int(port)


@pytest.fixture(params=["scheduler", "worker"])
def listener(request, cluster) -> tuple[str, int]:
    """The host and port of a listener that speaks trident's protocol."""
    if request.param == "scheduler":
        return host_port(cluster.scheduler_address)
    worker = next(iter(cluster.workers.values())).worker
    return host_port(worker.address)


# --- the binary protocol, before authentication ------------------------------------------


async def test_a_msgpack_bomb_before_hello_is_refused_unread(client, listener):
    async def attack() -> bool:
        stream = await trio.open_tcp_stream(*listener)
        async with stream:
            await send_until_closed(stream, BOMB_PACKET)
            return await closed_by_peer(stream)

    closed, median, growth = await under_attack(client, attack)
    assert closed
    assert_within_budgets(median, growth)


@pytest.mark.parametrize("shape", ["payload frame", "envelope"])
async def test_four_declared_gigabyte_frames_are_refused_on_sight(client, listener, shape):
    lengths = (1, 2**30) if shape == "payload frame" else (2**30,)
    chunk = b"\x90" + b"\0" * (MiB - 1)

    async def one() -> bool:
        stream = await trio.open_tcp_stream(*listener)
        async with stream:
            await send_until_closed(stream, packet_prefix(*lengths))
            for _ in range(64):  # up to 64 MiB of the frame, unless closed first
                try:
                    await stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
            return await closed_by_peer(stream)

    async def attack() -> list[bool]:
        results: list[bool] = []

        async def record() -> None:
            results.append(await one())

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(record)
        return results

    closed, median, growth = await under_attack(client, attack)
    assert closed == [True] * 4
    assert_within_budgets(median, growth)


async def test_many_unauthenticated_connections_evict_the_oldest(client, listener):
    count = 320  # the gate admits 256 at once

    async def attack() -> list[bool]:
        streams = []
        for _ in range(count):
            streams.append(await trio.open_tcp_stream(*listener))
            await trio.lowlevel.checkpoint()
        try:
            # The first ones were evicted to make room; each got its Challenge first.
            return [await closed_by_peer(s, within=5) for s in streams[: count - 256]]
        finally:
            for s in streams:
                await s.aclose()

    closed, median, growth = await under_attack(client, attack)
    assert all(closed)
    assert_within_budgets(median, growth)


async def test_a_slow_loris_handshake_is_closed_at_the_deadline(client, listener, monkeypatch):
    monkeypatch.setattr(handshake, "HANDSHAKE_TIMEOUT", 1.0)

    async def attack() -> tuple[bool, float]:
        start = trio.current_time()
        stream = await trio.open_tcp_stream(*listener)
        async with stream:
            # A packet of 200 bytes, one byte every 100 ms: never stalls, never ends.
            await stream.send_all(packet_prefix(200))
            with trio.move_on_after(10):
                try:
                    for _ in range(200):
                        await stream.send_all(b"\x90")
                        await trio.sleep(0.1)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            return await closed_by_peer(stream), trio.current_time() - start

    (closed, elapsed), median, growth = await under_attack(client, attack, rounds=20)
    assert closed
    assert elapsed < 5
    assert_within_budgets(median, growth)


# --- the connecting side: a rogue scheduler's bomb against a nanny and a client ----------


@pytest.mark.parametrize(
    "first_packet",
    [BOMB_PACKET, packet_prefix(1, 2**30) + b"\x90", packet_prefix(2**30)],
    ids=["msgpack bomb", "gigabyte frame", "gigabyte envelope"],
)
async def test_a_rogue_schedulers_first_packet_is_refused_by_nannies_and_clients(
    client, first_packet
):
    async def rogue(stream: trio.SocketStream) -> None:
        await send_until_closed(stream, first_packet)
        await closed_by_peer(stream)

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(partial(trio.serve_tcp, rogue, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        address = f"tcp://127.0.0.1:{port}"

        async def attack() -> list[str]:
            errors = []
            with pytest.raises(ProtocolError, match=r"exceeds|limit") as nanny_error:
                await Nanny(address).serve()
            errors.append(str(nanny_error.value))
            with pytest.raises(ProtocolError, match=r"exceeds|limit") as client_error:
                async with Client(address, asynchronous=True, set_as_default=False):
                    pass
            errors.append(str(client_error.value))
            return errors

        errors, median, growth = await under_attack(client, attack)
        nursery.cancel_scope.cancel()
    assert all(str(PREAUTH_MAX_BYTES) in e or "(limit 1)" in e for e in errors), errors
    assert_within_budgets(median, growth)


# --- after authentication: a large envelope does not stall the event loop ---------------


async def authenticated_client_connection(cluster) -> Connection:
    connection = Connection(await connect(cluster.scheduler_address))
    await handshake.offer(connection, role="client", name="bulk", token="sesame")
    await connection.send([m.RegisterClient("bulk", "bulk")])
    await connection.receive()
    return connection


#: 8 MiB envelopes that decode into millions of small arrays (and then fail, as none is
#: a message): the most decoding work per byte that an envelope holds. Decoded as lists,
#: these were millions of objects for the garbage collector to walk, holding the GIL.
BULK_ENVELOPES = {
    "2 Mi arrays of 3 ints": _array32(2 * MiB, b"\x93\x00\x01\x02" * (2 * MiB)),
    "8 Mi empty arrays": BOMB_ENVELOPE,
    "2 Mi maps of an empty array": _array32(2 * MiB, b"\x81\xa0\x90" * (2 * MiB)),
}
LOOP_PAUSE_BUDGET = 0.050


async def receive_until_closed(connection: Connection) -> None:
    while True:
        await connection.receive()


async def largest_loop_pause(during: Callable[[], Awaitable[Any]]) -> float:
    """The longest the event loop went without running a 1 ms ticker while `during` ran."""
    worst = 0.0
    done = trio.Event()

    async def tick() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await trio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        try:
            await during()
        finally:
            done.set()
    return worst


@pytest.mark.parametrize("envelope", list(BULK_ENVELOPES.values()), ids=list(BULK_ENVELOPES))
async def test_an_authenticated_8_mib_envelope_never_stalls_the_event_loop(
    cluster, client, envelope
):
    async def attempt() -> str | None:
        """One envelope and the round trips after it: None if the loop never paused for
        longer than the budget, else what was measured."""
        bulk = await authenticated_client_connection(cluster)
        await round_trip(client, 0)
        gc.collect()  # start from a settled heap, as a scheduler at rest has
        times: list[float] = []

        async def during() -> None:
            await bulk.stream.send_all(struct.pack("<IQ", 1, len(envelope)))
            await bulk.stream.send_all(envelope)
            with trio.fail_after(20), pytest.raises((ConnectionClosed, StreamClosed)):
                await receive_until_closed(bulk)  # the scheduler refuses the envelope
            # The collections the decoded objects cost would come after the decoding.
            deadline = trio.current_time() + 0.5
            while trio.current_time() < deadline:
                times.append(await round_trip(client, len(times)))

        pause = await largest_loop_pause(during)
        await bulk.aclose()
        median = statistics.median(times)
        if pause < LOOP_PAUSE_BUDGET and median < RTT_BUDGET:
            return None
        return (
            f"{len(times)} round trips, median {median * 1000:.1f} ms, pause {pause * 1000:.0f} ms"
        )

    # Decoded into lists, these envelopes paused the loop for 95-250 ms every time (full
    # collections of the new objects, and freeing the envelope in one go); now for a few
    # ms. A machine loaded by other work pauses the loop now and then by itself: one of
    # three attempts within the budget tells the two apart.
    failures = []
    for _ in range(3):
        failure = await attempt()
        if failure is None:
            return
        failures.append(failure)
    pytest.fail("; ".join(failures))


def test_large_envelopes_are_decoded_in_a_thread_by_default():
    limits = Limits()
    assert limits.thread_decode_bytes <= 64 * 1024
    assert connection_module.PREAUTH_LIMITS.max_frames == 1
    assert connection_module.PREAUTH_LIMITS.buffer_bytes == PREAUTH_MAX_BYTES


# --- the dashboard -----------------------------------------------------------------------


@pytest.fixture
def dashboard(cluster) -> tuple[str, int]:
    host, port = cluster.scheduler.dashboard_address.rsplit(":", 1)
    return host, int(port)


async def http_exchange(address: tuple[str, int], data: bytes) -> tuple[bytes, bool]:
    """Send `data`, return what came back and whether the server then closed."""
    stream = await trio.open_tcp_stream(*address)
    async with stream:
        await send_until_closed(stream, data)
        received = b""
        with trio.move_on_after(5) as scope:
            try:
                while chunk := await stream.receive_some(65536):
                    received += chunk
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        return received, not scope.cancelled_caught


async def health(address: tuple[str, int]) -> bytes:
    response, _ = await http_exchange(
        address, b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    return response


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (8 * MiB) + b"\r\n\r\n", b"431"),
        (
            b"GET / HTTP/1.1\r\nhost: x\r\n"
            + b"".join(b"x-%d: 1\r\n" % i for i in range(http.MAX_HEADERS + 1))
            + b"\r\n",
            b"431",
        ),
        (b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 1073741824\r\n\r\n" + b"x" * MiB, b"413"),
        (
            b"GET / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"%x\r\n" % (256 * 1024)
            + b"x" * (256 * 1024)
            + b"\r\n",
            b"413",
        ),
    ],
    ids=["8 MiB header", "too many headers", "gigabyte body", "chunked body"],
)
async def test_the_dashboard_refuses_oversized_requests(client, dashboard, request_bytes, status):
    async def attack() -> tuple[bytes, bool]:
        return await http_exchange(dashboard, request_bytes)

    (response, closed), median, growth = await under_attack(client, attack)
    assert response.startswith(b"HTTP/1.1 " + status), response[:100]
    assert closed
    assert b"200" in (await health(dashboard)).split(b"\r\n")[0]
    assert_within_budgets(median, growth)


@pytest.mark.parametrize("part", ["head", "body"])
async def test_dashboard_slow_loris_is_closed_at_the_deadline(client, dashboard, monkeypatch, part):
    monkeypatch.setattr(http, "HEAD_TIMEOUT", 0.5)
    monkeypatch.setattr(http, "BODY_TIMEOUT", 0.5)

    async def attack() -> tuple[bool, float]:
        start = trio.current_time()
        stream = await trio.open_tcp_stream(*dashboard)
        async with stream:
            if part == "body":
                await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
            else:
                await stream.send_all(b"GET / HTTP/1.1\r\n")
            with trio.move_on_after(10):
                try:
                    for _ in range(100):
                        await stream.send_all(b"x" if part == "body" else b"x-a: b\r\n")
                        await trio.sleep(0.05)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            return await closed_by_peer(stream), trio.current_time() - start

    (closed, elapsed), median, growth = await under_attack(client, attack, rounds=20)
    assert closed
    assert elapsed < 3
    assert_within_budgets(median, growth)


async def test_many_idle_dashboard_connections_evict_the_oldest(client, dashboard):
    count = http.MAX_WAITING_CONNECTIONS + 64

    async def attack() -> tuple[list[bool], bytes]:
        streams = []
        for _ in range(count):
            streams.append(await trio.open_tcp_stream(*dashboard))
            await trio.lowlevel.checkpoint()
        try:
            await trio.sleep(0.1)
            response = await health(dashboard)
            return [await closed_by_peer(s, within=5) for s in streams[:64]], response
        finally:
            for s in streams:
                await s.aclose()

    (closed, response), median, growth = await under_attack(client, attack)
    assert all(closed)
    assert b"200" in response.split(b"\r\n")[0]
    assert_within_budgets(median, growth)
