"""Memory of a whole cluster (client, scheduler, workers) around the 20k-task map.

Each runtime is measured in a fresh process of its own (the benchmark's main process
hosts all runtimes side by side, so its memory says nothing per runtime). Reports the
resident memory of the process tree — the client process plus every worker process —
after connecting, after ``map`` + ``gather`` of 20,000 no-op tasks, and after the
futures are dropped (proving the cluster releases them).

Usage: ``python -m benchmarks.memory trident|dask|ray``; prints one JSON line.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time

import psutil

from . import scenarios

MIB = 2**20


def tree_rss() -> int:
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def settle() -> int:
    """The tree's RSS once collections ran and workers had time to free memory."""
    gc.collect()
    time.sleep(1.0)
    return tree_rss()


def measure_client_runtime(name: str) -> dict[str, float]:
    from .runtimes import connect_dask, connect_trident

    connect = {"trident": connect_trident, "dask": connect_dask}[name]
    cluster, client = connect(2, 1)
    client.submit(scenarios.noop, 0, pure=False).result()
    ready = settle()
    futures = client.map(scenarios.noop, range(20_000))
    client.gather(futures)
    after_map = settle()
    del futures
    released = settle()
    client.close()
    cluster.close()
    return {"ready": ready / MIB, "after_map": after_map / MIB, "released": released / MIB}


def measure_ray() -> dict[str, float]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    noop = ray.remote(scenarios.noop)
    ray.get(noop.remote(0))
    ready = settle()
    refs = [noop.remote(i) for i in range(20_000)]
    ray.get(refs)
    after_map = settle()
    del refs
    released = settle()
    ray.shutdown()
    return {"ready": ready / MIB, "after_map": after_map / MIB, "released": released / MIB}


def main() -> int:
    name = sys.argv[1]
    result = measure_ray() if name == "ray" else measure_client_runtime(name)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
