"""The runtimes under comparison: trident, dask.distributed and (if installed) Ray.

Each runtime starts a local cluster of `workers` processes x `threads` threads and maps
scenario names to callables taking no arguments. A runtime may not implement every
scenario (Ray has no scatter); the table shows a dash there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from . import scenarios


class ClientRuntime:
    """A runtime with the dask.distributed Client API (trident and dask)."""

    def __init__(
        self, name: str, connect: Callable[[int, int], tuple[Any, Any]], workers: int, threads: int
    ):
        self.name = name
        self._connect = connect
        self._cluster, self._client = connect(workers, threads)
        self.scenarios: dict[str, Callable[[], float]] = {
            name: (lambda fn=fn: fn(self._client))
            for name, fn in scenarios.CLIENT_SCENARIOS.items()
        }
        self.scenarios["cluster_ready"] = self.cluster_ready
        self.scenarios["rss_after_map_MiB"] = lambda: rss_after_map(name)

    def cluster_ready(self) -> float:
        """Seconds to start a fresh 2-worker cluster and connect a client to it."""
        start = time.perf_counter()
        cluster, client = self._connect(2, 1)
        client.submit(scenarios.noop, 1, pure=False).result()
        elapsed = time.perf_counter() - start
        client.close()
        cluster.close()
        return elapsed

    def close(self) -> None:
        self._client.close()
        self._cluster.close()


def connect_trident(workers: int, threads: int) -> tuple[Any, Any]:
    import trident

    cluster = trident.LocalCluster(
        n_workers=workers, threads_per_worker=threads, dashboard_address=None
    )
    return cluster, trident.Client(cluster, set_as_default=False)


def connect_dask(workers: int, threads: int) -> tuple[Any, Any]:
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None
    )
    # dask's actor handles find their client through the default client.
    return cluster, distributed.Client(cluster, set_as_default=True)


def rss_after_map(name: str) -> float:
    """MiB of the whole process tree after the 20k map, measured in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["after_map"])


def fixture_ready() -> float:
    """Milliseconds until trident's in-process test cluster serves a task."""
    import trio

    from trident import Client
    from trident.testing import in_process_cluster

    async def main() -> float:
        start = time.perf_counter()
        async with (
            in_process_cluster(n_workers=2) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            await client.submit(scenarios.noop, 1, pure=False)
            return (time.perf_counter() - start) * 1000

    return trio.run(main)


def start_trident(workers: int, threads: int) -> ClientRuntime:
    runtime = ClientRuntime("trident", connect_trident, workers, threads)
    runtime.scenarios["fixture_ready"] = fixture_ready
    return runtime


def start_dask(workers: int, threads: int) -> ClientRuntime:
    return ClientRuntime("dask", connect_dask, workers, threads)


class RayRuntime:
    """Ray's own API for the same scenarios."""

    name = "ray"

    def __init__(self, workers: int, threads: int):
        import ray

        self._ray = ray
        ray.init(
            num_cpus=workers * threads,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        self._noop = ray.remote(scenarios.noop)
        self._inc = ray.remote(scenarios.inc)
        self._counter_class = ray.remote(scenarios.Counter)
        self.scenarios: dict[str, Callable[[], float]] = {
            "map_gather_20k": self.map_gather,
            "round_trip": self.round_trip,
            "chain_1000": self.chain,
            "tree_4096": self.tree,
            "actor_call": self.actor_call,
            "actor_pipelined_10k": self.actor_pipelined,
            "rss_after_map_MiB": lambda: rss_after_map("ray"),
        }

    def map_gather(self, n: int = 20_000) -> float:
        start = time.perf_counter()
        results = self._ray.get([self._noop.remote(i) for i in range(n)])
        assert len(results) == n
        return n / (time.perf_counter() - start)

    def round_trip(self, n: int = 200) -> float:
        self._ray.get(self._noop.remote(-1))
        start = time.perf_counter()
        for i in range(n):
            self._ray.get(self._noop.remote(i))
        return (time.perf_counter() - start) / n * 1e6

    def chain(self, n: int = 1000) -> float:
        start = time.perf_counter()
        ref = self._inc.remote(0)
        for _ in range(n - 1):
            ref = self._inc.remote(ref)
        assert self._ray.get(ref) == n
        return (time.perf_counter() - start) / n * 1e6

    def tree(self, leaves: int = 4096) -> float:
        add = self._ray.remote(scenarios.add)
        start = time.perf_counter()
        level = [self._inc.remote(i) for i in range(leaves)]
        tasks = len(level)
        while len(level) > 1:
            level = [add.remote(a, b) for a, b in zip(level[::2], level[1::2], strict=True)]
            tasks += len(level)
        assert self._ray.get(level[0]) == sum(range(1, leaves + 1))
        return tasks / (time.perf_counter() - start)

    def actor_call(self, n: int = 300) -> float:
        counter = self._counter_class.remote()
        self._ray.get(counter.incr.remote())
        start = time.perf_counter()
        for _ in range(n):
            self._ray.get(counter.incr.remote())
        return (time.perf_counter() - start) / n * 1e6

    def actor_pipelined(self, n: int = 10_000) -> float:
        counter = self._counter_class.remote()
        self._ray.get(counter.incr.remote())
        start = time.perf_counter()
        values = self._ray.get([counter.incr.remote() for _ in range(n)])
        assert values[-1] == n + 1
        return n / (time.perf_counter() - start)

    def close(self) -> None:
        self._ray.shutdown()


def start_ray(workers: int, threads: int) -> RayRuntime:
    return RayRuntime(workers, threads)


STARTERS: dict[str, Callable[[int, int], Any]] = {
    "trident": start_trident,
    "dask": start_dask,
    "ray": start_ray,
}


def start_trident_cli(workers: int, threads: int) -> ClientRuntime:
    from .cli_clusters import connect_trident_cli

    return ClientRuntime("trident", connect_trident_cli, workers, threads)


def start_dask_cli(workers: int, threads: int) -> ClientRuntime:
    from .cli_clusters import connect_dask_cli

    return ClientRuntime("dask", connect_dask_cli, workers, threads)


#: Clusters deployed from the command line, scheduler in a process of its own
#: (``--deploy cli``); Ray has no counterpart here.
CLI_STARTERS: dict[str, Callable[[int, int], Any]] = {
    "trident": start_trident_cli,
    "dask": start_dask_cli,
}


def available(name: str) -> bool:
    """Whether the runtime's package is installed."""
    import importlib.util

    module = {"trident": "trident", "dask": "distributed", "ray": "ray"}[name]
    return importlib.util.find_spec(module) is not None
