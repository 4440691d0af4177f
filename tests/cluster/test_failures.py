"""Tasks that break their workers: each fails with a clear error; the cluster goes on.

Worker processes of a `LocalCluster` run under nannies, so a dead worker comes back and
the scheduler learns why it died.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading

import numpy as np
import pytest
import trio

from trident import Client, KilledWorker, LocalCluster, SerializationError
from trident.testing import in_process_cluster


def inc(x):
    return x + 1


def exit_abruptly():
    os._exit(3)


def segfault():
    ctypes.string_at(0)


def huge():
    return np.zeros(3 * 2**30 // 8)  # 3 GiB, never touched: only its size matters here


def unpicklable():
    return threading.Lock()


@pytest.fixture
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit="500MB", allowed_failures=1
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_a_task_that_calls_os_exit_fails_with_killed_worker(client):
    future = client.submit(exit_abruptly, pure=False)
    with pytest.raises(KilledWorker) as info:
        future.result(timeout=60)
    error = info.value
    assert error.key == future.key
    assert len(error.workers) == 2
    assert error.causes == ["exited with code 3", "exited with code 3"]
    assert client.submit(inc, 1).result(timeout=60) == 2


def test_a_task_that_segfaults_fails_with_killed_worker(client):
    future = client.submit(segfault, pure=False)
    with pytest.raises(KilledWorker, match="killed by SIGSEGV") as info:
        future.result(timeout=60)
    assert info.value.causes == ["killed by SIGSEGV"] * 2
    assert client.submit(inc, 2).result(timeout=60) == 3


def test_results_too_large_or_unpicklable_fail_without_killing_anything(client):
    pids = {h.pid for h in client.cluster.workers.values()}
    with pytest.raises(MemoryError, match=r"returned 3\.\d+ GB, more than the memory limit"):
        client.submit(huge, pure=False).result(timeout=60)
    with pytest.raises(SerializationError):
        client.submit(unpicklable, pure=False).result(timeout=60)
    assert {h.pid for h in client.cluster.workers.values()} == pids
    assert client.submit(inc, 3).result(timeout=60) == 4


_attempts: dict[str, int] = {}


def fail_differently(name):
    _attempts[name] = _attempts.get(name, 0) + 1
    raise ValueError(f"attempt {_attempts[name]}")


async def test_retries_rerun_a_failing_task_and_report_the_last_error():
    with trio.fail_after(30):
        async with (
            in_process_cluster(n_workers=2) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            future = client.submit(fail_differently, "a", retries=2, pure=False)
            with pytest.raises(ValueError, match="attempt 3"):
                await future
            assert _attempts["a"] == 3


def make(n):
    return list(range(n))


def total(values, extra=0):
    return sum(values) + extra


def kill_holder(client, future):
    """SIGKILL the worker process that holds `future`'s data; return its address."""
    (address,) = client.who_has([future])[future.key]
    (handle,) = [h for h in client.cluster.workers.values() if h.address == address]
    os.kill(handle.pid, signal.SIGKILL)
    return address


def test_lost_data_is_recomputed_from_lineage_or_read_from_a_replica():
    with (
        LocalCluster(n_workers=3, threads_per_worker=1, memory_limit=None) as cluster,
        Client(cluster) as client,
    ):
        data = client.submit(make, 100_000)  # big enough to stay on its worker
        assert client.submit(total, data).result(timeout=60) == sum(range(100_000))
        [copy] = client.scatter([list(range(10))], broadcast=True)
        assert len(client.who_has([copy])[copy.key]) == 3
        gone = kill_holder(client, data)
        # The data is recomputed from its task; the scattered copy is read elsewhere.
        assert client.submit(total, data, 1).result(timeout=60) == sum(range(100_000)) + 1
        assert client.submit(total, copy).result(timeout=60) == 45
        assert gone not in client.who_has([data])[data.key]
