"""The runtimes under comparison: trident, dask.distributed and (if installed) Ray.

Each runtime starts a local cluster of `workers` processes x `threads` threads and maps
scenario names to callables taking no arguments. A runtime may not implement every
scenario (Ray has no scatter); the table shows a dash there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import scenarios


class ClientRuntime:
    """A runtime with the dask.distributed Client API (trident and dask)."""

    def __init__(self, name: str, cluster: Any, client: Any):
        self.name = name
        self._cluster = cluster
        self._client = client
        self.scenarios: dict[str, Callable[[], float]] = {
            name: (lambda fn=fn: fn(client)) for name, fn in scenarios.CLIENT_SCENARIOS.items()
        }

    def close(self) -> None:
        self._client.close()
        self._cluster.close()


def start_trident(workers: int, threads: int) -> ClientRuntime:
    import trident

    cluster = trident.LocalCluster(n_workers=workers, threads_per_worker=threads)
    return ClientRuntime("trident", cluster, trident.Client(cluster, set_as_default=False))


def start_dask(workers: int, threads: int) -> ClientRuntime:
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None
    )
    # dask's actor handles find their client through the default client.
    return ClientRuntime("dask", cluster, distributed.Client(cluster, set_as_default=True))


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
            "actor_call": self.actor_call,
            "actor_pipelined_10k": self.actor_pipelined,
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


def available(name: str) -> bool:
    """Whether the runtime's package is installed."""
    import importlib.util

    module = {"trident": "trident", "dask": "distributed", "ray": "ray"}[name]
    return importlib.util.find_spec(module) is not None
