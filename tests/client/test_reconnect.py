"""Clients and workers that lose the scheduler: they reconnect, resume, or give up cleanly."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
import trio

from trident import Client, LocalCluster, Scheduler, SchedulerLostError, Worker, wait
from trident.comm import handshake
from trident.comm.connection import Connection
from trident.comm.transports import connect, serve
from trident.protocol import messages as m
from trident.scheduler.liveness import LivenessSettings

TOKEN = "reconnect-token"
FAST = LivenessSettings(
    heartbeat_interval=0.05, worker_timeout=1.0, client_timeout=1.0, client_grace=2.0
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def slow_inc(x, seconds):
    await trio.sleep(seconds)
    return x + 1


def inc(x):
    return x + 1


def quick_client(address, **kwargs):
    return Client(
        address,
        asynchronous=True,
        set_as_default=False,
        security=TOKEN,
        heartbeat_interval=50,
        **kwargs,
    )


async def wait_for(predicate, timeout=10):
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_a_client_whose_connection_breaks_resumes_and_keeps_its_futures(caplog):
    caplog.set_level(logging.INFO, logger="trident")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(
                Scheduler("tcp://127.0.0.1:0", token=TOKEN, liveness=FAST).serve
            )
            await nursery.start(
                Worker(scheduler.address, token=TOKEN, nthreads=2, heartbeat_interval=0.05).serve
            )
            async with quick_client(scheduler.address) as client:
                done = client.submit(inc, 1)
                assert await done == 2
                running = client.submit(slow_inc, 10, 0.5)
                await trio.sleep(0.1)
                client_id = client._core.client_id
                scheduler._disconnect(client_id)  # the server drops the connection
                assert await running == 11
                assert await done == 2
                assert client.status == "running"
                assert await client.submit(inc, 41) == 42
            nursery.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"client {client_id} reconnected" in message for message in messages)
    assert not any("sent nothing" in message for message in messages)


async def test_a_restarted_scheduler_keeps_nothing_and_says_so():
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(Scheduler(address, token=TOKEN, liveness=FAST).serve)
            worker = Worker(address, token=TOKEN, scheduler_timeout=1.0, heartbeat_interval=0.05)
            await nursery.start(worker.serve)
            async with quick_client(address, reconnect_timeout=20) as client:
                stored = client.submit(list, range(100_000))  # too big to travel inline
                await wait([stored])
                pending = client.submit(slow_inc, 1, 60)
                await trio.sleep(0.2)
                scheduler.close()
                # The same address, a fresh scheduler that knows nothing of the old work.
                fresh = await nursery.start(Scheduler(address, token=TOKEN, liveness=FAST).serve)
                with pytest.raises(SchedulerLostError, match="no longer knows"):
                    await pending
                with pytest.raises(SchedulerLostError):
                    await stored
                await wait_for(lambda: len(fresh.state.workers) == 1)
                assert worker.address in fresh.state.workers  # the same worker came back
                assert await client.submit(inc, 1) == 2
            nursery.cancel_scope.cancel()


async def test_a_client_that_cannot_reconnect_fails_its_futures_and_closes():
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(Scheduler("tcp://127.0.0.1:0", token=TOKEN).serve)
            async with quick_client(scheduler.address, reconnect_timeout=0.5) as client:
                waiting = client.submit(inc, 1)  # no worker: it never runs
                await trio.sleep(0.05)
                scheduler.close()
                with pytest.raises(SchedulerLostError, match="could not reach it again"):
                    await waiting
                await wait_for(lambda: client.status == "closed")
            nursery.cancel_scope.cancel()


async def test_a_worker_that_cannot_reconnect_stops():
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(Scheduler("tcp://127.0.0.1:0", token=TOKEN).serve)
            worker = Worker(scheduler.address, token=TOKEN, reconnect_timeout=0.3)
            async with trio.open_nursery() as workers:
                await workers.start(worker.serve)
                scheduler.close()
            assert worker.lost_scheduler
            nursery.cancel_scope.cancel()


async def silent_scheduler(stream):
    """Answers the handshake and the registration, then never says anything again."""
    connection = Connection(stream)
    await handshake.accept(connection, token=TOKEN, server_id="silent")
    await connection.receive()
    await connection.send([m.ClientWelcome("silent", [])])
    await trio.sleep_forever()


async def test_a_silent_scheduler_is_noticed(caplog):
    caplog.set_level(logging.INFO, logger="trident.client")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve, "tcp://127.0.0.1:0", silent_scheduler)
            client = quick_client(address, scheduler_timeout=0.3, reconnect_timeout=0.3)
            async with client:
                future = client.submit(inc, 1)
                with pytest.raises(SchedulerLostError):
                    await future
            nursery.cancel_scope.cancel()
    assert any("sent nothing for 0.3 s" in r.getMessage() for r in caplog.records)


async def test_the_scheduler_drops_silent_workers_and_releases_clients_gone_for_good(caplog):
    caplog.set_level(logging.INFO, logger="trident.scheduler")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(
                Scheduler("tcp://127.0.0.1:0", token=TOKEN, liveness=FAST).serve
            )
            await nursery.start(
                Worker(scheduler.address, token=TOKEN, heartbeat_interval=0.05).serve
            )
            # A worker that registers and then falls silent.
            stream = await connect(scheduler.address)
            mute = Connection(stream)
            await handshake.offer(mute, role="worker", name="mute", token=TOKEN)
            info = m.WorkerInfo("tcp://127.0.0.1:1", "mute", 1, 0, {})
            await mute.send([m.RegisterWorker(info, {})])
            await wait_for(lambda: "tcp://127.0.0.1:1" in scheduler.state.workers)
            # A client that submits work, then falls silent (its process is gone).
            stream = await connect(scheduler.address)
            ghost = Connection(stream)
            await handshake.offer(ghost, role="client", name="ghost", token=TOKEN)
            await ghost.send([m.RegisterClient("ghost", "ghost")])
            async with quick_client(scheduler.address) as client:
                future = client.submit(slow_inc, 1, 0.1)
                await ghost.send([m.WantKeys([future.key]), m.UpdateGraph({}, []), m.Heartbeat()])
                await wait_for(lambda: "tcp://127.0.0.1:1" not in scheduler.state.workers)
                await wait_for(lambda: "ghost" not in scheduler.state.clients)
                assert await future == 2  # the real client and worker were never disturbed
                assert client._core.client_id in scheduler.state.clients
                wanters = scheduler.state.tasks[future.key].who_wants
                assert {cs.client_id for cs in wanters} == {client._core.client_id}
            await mute.aclose()
            await ghost.aclose()
            nursery.cancel_scope.cancel()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "worker tcp://127.0.0.1:1 sent nothing for 1 s" in messages
    assert "client ghost sent nothing for 1 s" in messages
    assert "did not come back" in messages


def slow_sync_inc(x, seconds):
    import time

    time.sleep(seconds)
    return x + 1


def drop_connection(cluster, client):
    """Have the scheduler close the client's connection, from the scheduler's loop."""
    cluster.loop_thread.call_soon(cluster.scheduler._disconnect, client._core.client_id)


def test_a_blocking_client_reconnects_and_keeps_its_futures():
    with (
        LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as c,
        Client(c.scheduler_address, security=c.token, set_as_default=False) as client,
    ):
        done = client.submit(list, range(100_000))  # stays on its worker
        assert len(done.result(timeout=10)) == 100_000
        running = client.submit(slow_sync_inc, 1, 0.5)
        drop_connection(c, client)
        assert running.result(timeout=20) == 2
        assert len(done.result(timeout=20)) == 100_000
        assert client.submit(inc, 2).result(timeout=20) == 3


def test_an_asyncio_client_reconnects_and_keeps_its_futures():
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as c:

        async def main():
            async with Client(
                c.scheduler_address, asynchronous=True, security=c.token, set_as_default=False
            ) as client:
                running = client.submit(slow_sync_inc, 1, 0.5)
                await asyncio.sleep(0.1)
                drop_connection(c, client)
                assert await running == 2
                assert await client.submit(inc, 2) == 3

        asyncio.run(main())
