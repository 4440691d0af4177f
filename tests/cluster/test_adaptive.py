"""Adaptive scaling: the recommendation from a state snapshot, and local clusters that
grow under load and shrink when idle without losing data."""

from __future__ import annotations

import math
import time

import pytest
import trio

from trident import Adaptive, Client, LocalCluster
from trident.cluster.adaptive import WorkSnapshot, parse_duration, recommend_workers, snapshot
from trident.protocol import messages as m

from ..scheduler.test_state import Harness, spec


def work(seconds=0.0, busy=0.1):
    time.sleep(busy)
    return seconds


def recommend(work, **options):
    settings = {"threads_per_worker": 1, "target_duration": 1.0, "minimum": 0, "maximum": 10}
    return recommend_workers(work, **(settings | options))


def snap(**fields):
    base = dict(
        workers=2, threads=2, occupancy=0.0, ready=0, ready_seconds=0.0, processing=0,
        memory_used=0, memory_limit=0,
    )  # fmt: skip
    return WorkSnapshot(**(base | fields))


def test_recommendations():
    assert recommend(snap()) == 0
    assert recommend(snap(), minimum=1) == 1
    assert recommend(snap(occupancy=4.0, processing=8, ready=10, ready_seconds=5.0)) == 9
    assert recommend(snap(occupancy=40.0, processing=2)) == 2  # two long tasks
    assert recommend(snap(occupancy=40.0, processing=50), maximum=6) == 6
    assert recommend(snap(occupancy=4.0, processing=8), threads_per_worker=4) == 1
    assert recommend(snap(workers=0, threads=0, ready=1, ready_seconds=0.0)) == 1
    assert recommend(snap(memory_used=70, memory_limit=100)) == 3
    assert parse_duration("100ms") == 0.1
    assert parse_duration("2m") == 120.0
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")
    with pytest.raises(ValueError, match="minimum"):
        Adaptive(None, minimum=3, maximum=2)


def test_snapshots_read_the_scheduler_state():
    h = Harness(workers=1, nthreads=1)
    h.submit(*[spec(f"t-{i}") for i in range(150)])
    found = snapshot(h.state)
    assert found.workers == 1
    assert found.processing == 1
    assert found.ready == 149
    assert math.isclose(found.ready_seconds, 149 * 0.5)
    h.state.handle_worker_message("w0", m.TaskSeceded("t-0"))
    h.flush()
    assert snapshot(h.state).processing == 2


def test_a_cluster_grows_under_load_and_shrinks_without_losing_data():
    with (
        LocalCluster(
            n_workers=0, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        adaptive = cluster.adapt(
            minimum=1, maximum=3, target_duration="100ms", interval="20ms", wait_count=2
        )
        assert cluster.adaptive is adaptive
        client.wait_for_workers(1, timeout=10)
        futures = client.map(work, range(30))
        peak = 0
        while not all(f.done() for f in futures):
            peak = max(peak, len(cluster.workers))
            time.sleep(0.01)
        assert peak == 3
        assert adaptive.scaled_up >= 2
        deadline = time.monotonic() + 10
        while len(cluster.workers) > 1:
            assert time.monotonic() < deadline, "the cluster did not shrink"
            time.sleep(0.01)
        assert adaptive.retired >= 2
        (address,) = client.has_what()
        assert len(client.has_what()[address]) == 30  # every result moved to the survivor
        assert client.gather(futures) == list(range(30))
        cluster.scale(2)  # scaling by hand stops adaptive scaling
        assert cluster.adaptive is None
        client.wait_for_workers(2, timeout=10)
        time.sleep(0.2)
        assert len(cluster.workers) == 2


async def test_adaptive_worker_processes_in_async_code():
    async with (
        LocalCluster(
            n_workers=0, threads_per_worker=1, asynchronous=True, dashboard_address=None
        ) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        adaptive = cluster.adapt(maximum=2, target_duration=0.05, interval=0.02, wait_count=3)
        with trio.fail_after(30):
            futures = client.map(work, range(8), busy=0.2)
            assert await client.gather(futures) == list(range(8))
            assert adaptive.scaled_up == 2
            del futures
            while cluster.workers:  # no data left: it may shrink to nothing
                await trio.sleep(0.02)
        assert adaptive.retired == 2
        with pytest.raises(RuntimeError, match="adapt"):
            LocalCluster(n_workers=0, asynchronous=True).adapt()
