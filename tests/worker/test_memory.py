"""A worker process under memory pressure: it spills results to disk, then pauses."""

from __future__ import annotations

import time

import numpy as np

from trident import Client, LocalCluster

from ..polling import wait_until_true

MB = 2**20


class Hog:
    """Holds memory the worker cannot spill (an actor's own state)."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def grow(self, nbytes: int) -> int:
        block = np.ones(nbytes // 8)  # touched, so it counts in the resident set
        self.blocks.append(block)
        return len(self.blocks)

    def free(self) -> int:
        self.blocks.clear()
        return 0


def block(i: int) -> np.ndarray:
    return np.full(40 * MB // 8, i, dtype=np.int64)


def inc(x: int) -> int:
    return x + 1


def wait_until(predicate, timeout=30.0):
    return wait_until_true(predicate, timeout=timeout, interval=0.05)


def worker_metrics(client):
    (worker,) = client.scheduler_info()["workers"].values()
    return worker["metrics"]


def worker_log(client):
    ((_, records),) = client.get_worker_logs().items()
    return "\n".join(text for _, text in records)


def test_a_worker_spills_results_then_pauses_and_resumes_as_memory_comes_and_goes():
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            memory_limit=600 * MB,
            # Wide gaps between thresholds: the worker's own memory varies a little.
            memory_target_fraction=0.4,
            memory_spill_fraction=0.5,
            memory_pause_fraction=0.9,
            memory_terminate_fraction=None,  # this test goes past 95% on purpose
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        results = client.map(block, range(3))
        client.gather(results)
        assert worker_metrics(client)["spilled"] == 0  # 120 MB: under the target
        hog = client.actor(Hog)
        hog.grow(250 * MB).result(timeout=30)  # past the spill threshold
        wait_until(lambda: worker_metrics(client)["spilled"] >= 80 * MB)
        hog.grow(300 * MB).result(timeout=30)  # past the pause threshold
        wait_until(lambda: "paused: no new task starts" in worker_log(client))
        waiting = client.submit(inc, 1)
        time.sleep(0.5)
        assert not waiting.done()
        hog.free().result(timeout=30)
        assert waiting.result(timeout=30) == 2
        assert "resumed" in worker_log(client)
        for i, values in enumerate(client.gather(results)):  # read back from disk
            assert values.shape == (40 * MB // 8,)
            assert (values == i).all()


def exact_block(i: int, nbytes: int) -> np.ndarray:
    return np.full(nbytes // 8, i, dtype=np.int64)


def test_five_times_the_memory_limit_spills_and_comes_back_exact():
    """dask.distributed's case (issue 16): two workers with a small limit persist five
    times that in blocks and read them back; nothing is terminated, all come back exact.
    Fast producers outrun a memory check every 0.1 s, so this fails unless results are
    spilled as they arrive, by the process's memory and not only the results' sizes."""
    limit, block_bytes, n = 150 * MB, 5 * MB, 150  # 750 MiB: 5x the limit
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=limit, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        workers = set(client.scheduler_info()["workers"])
        futures = [client.submit(exact_block, i, block_bytes, pure=False) for i in range(n)]
        for i, future in enumerate(futures):
            value = future.result(timeout=120)
            assert value.shape == (block_bytes // 8,)
            assert (value == i).all()
        spilled = client.run(lambda dask_worker: dask_worker.data.spilled_bytes)
        assert sum(spilled.values()) >= 2 * limit  # most of it went to disk
        info = client.scheduler_info()
        assert info["worker_deaths"] == []
        assert set(info["workers"]) == workers  # none was terminated and replaced
