"""`Client.restart_workers`: the nannies of the named workers replace them; the rest of
the cluster is left alone."""

from __future__ import annotations

import os

import pytest

from trident import Client, LocalCluster


def inc(x):
    return x + 1


def test_restart_workers_replaces_only_the_named_workers():
    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(2)
        first, second = sorted(client.nthreads())
        pids = client.run(os.getpid)
        assert client.restart_workers([first], timeout=60) == {first: "OK"}
        client.wait_for_workers(2, timeout=60)
        now = client.run(os.getpid)
        assert now[second] == pids[second]
        assert first not in now or now[first] != pids[first]
        assert client.submit(inc, 1).result(timeout=30) == 2


def test_restart_workers_refuses_workers_without_a_nanny():
    with (
        LocalCluster(n_workers=1, processes=False) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        (address,) = client.nthreads()
        with pytest.raises(ValueError, match="without a nanny"):
            client.restart_workers([address])
        result = client.restart_workers([address], raise_for_error=False)
        assert isinstance(result[address], ValueError)
        assert client.submit(inc, 1).result() == 2
