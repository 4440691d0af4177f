"""Nanny: real worker processes killed, restarted with back-off, deaths reported with reasons."""

from __future__ import annotations

import os
import signal
import socket
import sys

import psutil
import pytest
import trio

from trident import AuthenticationError, CancelledError, Client, Scheduler, Security
from trident.worker.config import WorkerConfig
from trident.worker.nanny import BackOff, Nanny, WorkerStartError

SECURITY = Security(token="nanny-test-token")
FAST = BackOff(first=0.05, maximum=1.0)


def inc(x):
    return x + 1


def die_once(flag, code):
    """Exit the worker process the first time (saying why on stderr), succeed afterwards."""
    if not os.path.exists(flag):
        open(flag, "w").close()
        sys.stderr.write("about to fail: disk on fire\n")
        sys.stderr.flush()
        os._exit(code)
    return "survived"


def hog(nbytes):
    import time

    block = bytearray(nbytes)
    for i in range(0, nbytes, 4096):
        block[i] = 1
    time.sleep(30)


async def wait_for(predicate, timeout=20):
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def deaths(client):
    return (await client.scheduler_info())["worker_deaths"]


@pytest.fixture
async def scheduler():
    async with trio.open_nursery() as nursery:
        yield await nursery.start(Scheduler("tcp://127.0.0.1:0", security=SECURITY).serve)
        nursery.cancel_scope.cancel()


async def test_a_killed_worker_is_restarted_with_back_off_and_reported(scheduler):
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            options = WorkerConfig(name="w0")
            nanny = await nursery.start(
                Nanny(scheduler.address, options, security=SECURITY, backoff=FAST).serve
            )
            async with Client(scheduler.address, security=SECURITY, asynchronous=True) as client:
                assert await client.submit(inc, 1) == 2
                for round_ in range(2):
                    pid, address = nanny.worker_pid, nanny.worker_address
                    os.kill(pid, signal.SIGKILL)
                    await wait_for(lambda old=address: nanny.worker_address not in ("", old))
                    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
                    reported = await deaths(client)
                    assert len(reported) == round_ + 1
                death = reported[-1]
                assert death["signal"] == "SIGKILL"
                assert death["exit_code"] is None
                assert death["reason"] == "killed by SIGKILL"
                assert not death["out_of_memory"]
                assert death["name"] == "w0"
                assert death["pid"] == pid
                # Registered workers are no crash loop: restarted at once each time.
                assert [d["restart_in"] for d in reported] == [0.05, 0.05]
                info = await client.scheduler_info()
                assert list(info["workers"]) == [nanny.worker_address]
                assert info["nannies"][nanny.id]["starts"] == 3
                assert await client.submit(inc, 2) == 3
            nursery.cancel_scope.cancel()


async def test_exit_code_and_stderr_tail_reach_the_scheduler(scheduler, tmp_path):
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nanny = Nanny(scheduler.address, WorkerConfig(), security=SECURITY, backoff=FAST)
            await nursery.start(nanny.serve)
            async with Client(scheduler.address, security=SECURITY, asynchronous=True) as client:
                future = client.submit(die_once, str(tmp_path / "flag"), 3)
                assert await future == "survived"  # rerun on the restarted worker
                (death,) = await deaths(client)
            assert death["exit_code"] == 3
            assert death["signal"] is None
            assert death["reason"] == "exited with code 3: about to fail: disk on fire"
            assert "about to fail: disk on fire" in death["stderr"]
            assert nanny.deaths[0].reason == death["reason"]
            nursery.cancel_scope.cancel()


async def test_a_worker_over_its_memory_limit_is_terminated_as_out_of_memory(scheduler):
    limit = 300 * 2**20
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nanny = Nanny(
                scheduler.address,
                WorkerConfig(memory_limit=limit),
                security=SECURITY,
                backoff=FAST,
                memory_check_interval=0.05,
            )
            await nursery.start(nanny.serve)
            async with Client(scheduler.address, security=SECURITY, asynchronous=True) as client:
                hogging = client.submit(hog, limit, pure=False)  # noqa: F841 (keeps it wanted)
                await wait_for(lambda: nanny.deaths)
                (death,) = await deaths(client)
            assert death["out_of_memory"]
            assert death["reason"].startswith("out of memory: the worker used")
            assert "memory limit" in death["reason"]
            nursery.cancel_scope.cancel()


async def test_client_restart_replaces_workers_and_cancels_futures(scheduler):
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nannies = [
                Nanny(scheduler.address, WorkerConfig(name=f"w{i}"), security=SECURITY)
                for i in range(2)
            ]
            for nanny in nannies:
                await nursery.start(nanny.serve)
            async with Client(scheduler.address, security=SECURITY, asynchronous=True) as client:
                old_pids = {nanny.worker_pid for nanny in nannies}
                done = client.submit(inc, 1)
                await done
                slow = client.submit(trio.sleep, 60)
                await client.restart()
                assert {nanny.worker_pid for nanny in nannies}.isdisjoint(old_pids)
                assert set(client.nthreads()) == {nanny.worker_address for nanny in nannies}
                for future in (done, slow):
                    assert future.status == "cancelled"
                    with pytest.raises(CancelledError, match="the cluster was restarted"):
                        await future
                info = await client.scheduler_info()
                assert info["tasks"] == 0
                assert info["worker_deaths"] == []
                assert await client.submit(inc, 1) == 2  # the same key runs afresh
            nursery.cancel_scope.cancel()


async def test_a_worker_that_cannot_start_fails_the_nanny_with_its_stderr(scheduler):
    nanny = Nanny(
        scheduler.address, WorkerConfig(listen_address="tcp://256.0.0.1:0"), security=SECURITY
    )
    with trio.fail_after(30), pytest.raises(WorkerStartError, match="before it registered"):
        await nanny.serve()
    assert nanny.worker_pid is None


async def test_a_nanny_with_a_wrong_token_is_refused(scheduler):
    nanny = Nanny(scheduler.address, security=Security(token="wrong"))
    with trio.fail_after(30), pytest.raises(AuthenticationError, match="invalid cluster token"):
        await nanny.serve()


async def test_the_nanny_and_its_worker_stop_when_the_scheduler_stays_away():
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            scheduler = Scheduler("tcp://127.0.0.1:0", security=SECURITY)
            await outer.start(scheduler.serve)
            nanny = Nanny(scheduler.address, security=SECURITY, reconnect_timeout=1)
            async with trio.open_nursery() as nursery:
                await nursery.start(nanny.serve)
                pid = nanny.worker_pid
                scheduler.close()
            assert nanny.worker_pid is None  # serve returned on its own, worker stopped
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


async def test_the_nanny_and_its_worker_reconnect_to_a_restarted_scheduler():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            first = await nursery.start(Scheduler(address, security=SECURITY).serve)
            nanny = Nanny(address, security=SECURITY, scheduler_timeout=5, reconnect_timeout=30)
            await nursery.start(nanny.serve)
            pid = nanny.worker_pid
            first.close()
            await wait_for(lambda: not nanny.connected)
            fresh = await nursery.start(Scheduler(address, security=SECURITY).serve)
            # The nanny registers again, then reports its worker (WorkerStarted): wait for
            # both, since under load the test may look in between.
            await wait_for(
                lambda: (
                    len(fresh.state.workers) == 1
                    and any(r.worker_address for r in fresh.state.nannies.records.values())
                )
            )
            assert nanny.worker_pid == pid  # the same worker process, registered again
            (record,) = fresh.state.nannies.records.values()
            assert record.worker_address == nanny.worker_address
            async with Client(address, security=SECURITY, asynchronous=True) as client:
                assert await client.submit(inc, 1) == 2
            nursery.cancel_scope.cancel()
