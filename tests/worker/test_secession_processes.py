"""Deep recursive fan-outs on worker processes with one thread each: every task that
waits for its subtasks secedes, so the recursion never runs out of threads."""

from __future__ import annotations

from trident import Client, LocalCluster

from .test_secession import fib, fib_fresh, fib_with_wait


def test_recursive_fibonacci_on_two_single_thread_worker_processes():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=None, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.submit(fib, 22).result(timeout=60) == 17711
        assert client.submit(fib_fresh, 9).result(timeout=60) == 34
        assert client.submit(fib_with_wait, 15).result(timeout=60) == 610
        # Every seceded task rejoined or ended: no worker has a task left in either state.
        busy = client.run(
            lambda dask_worker: len(dask_worker.state.executing) + len(dask_worker.state.seceded)
        )
        assert set(busy.values()) == {0}
