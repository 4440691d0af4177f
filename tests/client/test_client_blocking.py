"""The blocking client: scripts and notebooks, over TCP with worker processes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from trident import (
    FIRST_COMPLETED,
    CancelledError,
    Client,
    LocalCluster,
    as_completed,
    default_client,
    wait,
)


def inc(x):
    return x + 1


def slow_inc(x, delay=0.2):
    time.sleep(delay)
    return x + 1


def boom():
    raise KeyError("missing")


def pid(_=None):
    import os

    return os.getpid()


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def no_leaked_processes_or_threads():
    """The module-scoped cluster owns processes across tests; leaks are checked at the end."""
    return


@pytest.fixture
def client(cluster):
    with Client(cluster) as client:
        yield client


def test_workers_are_separate_processes(client):
    pids = set(client.gather(client.map(pid, range(20), pure=False)))
    import os

    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2
    assert client.scheduler_address.startswith("inproc://")  # same loop as its cluster


def test_submit_map_gather_scatter(client):
    assert client.submit(inc, 1).result(timeout=10) == 2
    futures = client.map(slow_inc, range(6), delay=0.01)
    assert client.gather(futures) == list(range(1, 7))
    [x] = client.scatter([np.arange(10)])
    assert client.submit(np.sum, x).result() == 45
    assert default_client() is client


def test_big_arrays_travel_both_ways(client):
    array = np.random.default_rng(1).random(5_000_000)
    [remote] = client.scatter([array])
    np.testing.assert_array_equal(client.gather(remote), array)
    total = client.submit(np.sum, remote)
    assert total.result() == pytest.approx(array.sum())


def test_errors_and_timeouts(client):
    with pytest.raises(KeyError, match="missing"):
        client.submit(boom).result()
    assert isinstance(client.submit(boom).exception(), KeyError)
    assert client.submit(boom).traceback() is not None
    slow = client.submit(slow_inc, 1, 1, pure=False)
    with pytest.raises(TimeoutError):
        slow.result(timeout=0.05)
    slow.cancel()
    assert slow.cancelled()
    with pytest.raises(CancelledError):
        slow.result()


def test_wait_as_completed_and_callbacks(client):
    futures = client.map(slow_inc, [3, 1, 2], [0.3, 0.01, 0.15], pure=False)
    done, _not_done = wait(futures, return_when=FIRST_COMPLETED)
    assert futures[1] in done
    order = [f.result() for f in as_completed(futures)]
    assert sorted(order) == [2, 3, 4]
    pairs = list(as_completed(client.map(inc, range(4)), with_results=True))
    assert sorted(r for _, r in pairs) == [1, 2, 3, 4]
    called = threading.Event()
    threads = []

    def callback(future):
        threads.append(threading.current_thread().name)
        called.set()

    client.submit(inc, 99).add_done_callback(callback)
    assert called.wait(10)
    assert threads[0].startswith("trident-callback")


def test_as_completed_batches(client):
    seq = as_completed(client.map(inc, range(10)))
    seen = [f for batch in seq.batches() for f in batch]
    assert len(seen) == 10
    assert seq.is_empty()


def test_close_is_idempotent_and_does_not_close_a_shared_cluster(cluster):
    client = Client(cluster)
    client.close()
    client.close()
    assert client.status == "closed"
    with Client(cluster) as again:
        assert again.submit(inc, 1).result() == 2


def test_tcp_client_of_a_running_cluster(cluster):
    with Client(cluster.scheduler_address, security=cluster.token) as client:
        assert client.scheduler_address.startswith("tcp://")
        assert client.submit(inc, 10).result() == 11
        assert client.gather(client.map(inc, range(3))) == [1, 2, 3]


def test_notebooks_show_the_client_its_cluster_and_futures_as_html(client, cluster):
    page = client._repr_html_()
    assert "<table>" in page
    assert client.scheduler_address_for_others in page
    assert "<td>2</td>" in page  # workers (and threads: one each)
    assert "LocalCluster" in cluster._repr_html_()
    future = client.submit(inc, 41)
    future.result()
    shown = future._repr_html_()
    assert "finished" in shown
    assert "int" in shown
    assert future.key in shown
    assert "&lt;" in client.submit(inc, 1, key="<odd>")._repr_html_()  # keys are escaped
