"""Cluster information and administration through the blocking client."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from .test_admin import import_and_call, inc, scheduler_facts, spin, where

RELEASE = threading.Event()


def wait_for_release():
    RELEASE.wait(10)
    return "released"


@pytest.fixture
def trident_cluster_options():
    return {"n_workers": 2, "threads_per_worker": 1}


def until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return found


def test_queries(trident_blocking_client):
    client = trident_blocking_client
    futures = client.map(inc, range(4))
    client.gather(futures)
    assert sum(len(keys) for keys in client.has_what().values()) == 4
    assert client.nbytes(summary=True).keys() == {"inc"}
    assert set(client.nbytes(futures, summary=False)) == {f.key for f in futures}
    versions = client.get_versions(check=True)
    assert set(versions) == {"client", "scheduler", "workers"}
    RELEASE.clear()
    address = sorted(client.nthreads())[0]
    running = client.submit(wait_for_release, workers=[address], pure=False)
    queued = client.submit(inc, 10, workers=[address])
    until(lambda: client.call_stack())
    assert client.processing()[address] == [running.key, queued.key]
    assert until(lambda: client.stacks()[address]) == [queued.key]
    (frames,) = client.call_stack(running).values()
    assert "in wait_for_release" in frames[running.key][0]
    RELEASE.set()
    assert running.result() == "released"
    assert queued.result() == 11


def test_profile_and_run(trident_blocking_client):
    client = trident_blocking_client
    client.gather(client.map(spin, [0.2, 0.2], pure=False))
    assert client.profile(key="spin")["count"] > 0
    assert len(client.profile(merge_workers=False)) == 2
    assert client.run(where) == {a: a for a in client.nthreads()}
    assert client.run_on_scheduler(scheduler_facts) == 2


def test_moving_data_and_retiring(trident_blocking_client):
    client = trident_blocking_client
    data = client.map(inc, range(6))
    client.gather(data)
    client.replicate(data)
    assert all(len(h) == 2 for h in client.who_has(data).values())
    client.replicate(data, n=1)
    client.rebalance(data)
    assert sorted(len(keys) for keys in client.has_what().values()) == [3, 3]
    leaving = sorted(client.nthreads())[0]
    assert list(client.retire_workers([leaving], close_workers=True)) == [leaving]
    until(lambda: len(client.nthreads()) == 1)
    assert client.gather(data) == list(range(1, 7))


def test_upload_file(trident_blocking_client, tmp_path, monkeypatch):
    module = "trident_uploaded_blocking_mod"
    monkeypatch.delitem(sys.modules, module, raising=False)
    path = tmp_path / f"{module}.py"
    path.write_text("def value():\n    return 'uploaded'\n")
    assert trident_blocking_client.upload_file(str(path)) is None
    assert trident_blocking_client.submit(import_and_call, module).result() == "uploaded"
