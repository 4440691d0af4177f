"""`trident.Scheduler` and `trident.Worker` started in the user's program (``async with``,
under trio and asyncio, as dask's asynchronous docs show), the introspection objects
`Client.run` and `run_on_scheduler` pass, `LocalCluster.get_logs` and
`Security.temporary`."""

from __future__ import annotations

import asyncio
import os

import pytest
import trio

from trident import Client, LocalCluster, Nanny, Scheduler, Security, Worker, get_client


def inc(x):
    return x + 1


def inc_through_the_lent_client(x):
    return get_client().submit(inc, x).result()


async def use_in_process_servers() -> tuple[int, int]:
    async with Scheduler() as s, Worker(s.address) as w:
        assert w.status == "running"
        async with Client(s.address, asynchronous=True, set_as_default=False) as client:
            direct = await client.submit(inc, 1)
            lent = await client.submit(inc_through_the_lent_client, 10)
            assert list(s.workers) == [w.address]
    assert w.status == "closed"
    return direct, lent


async def test_scheduler_and_worker_under_trio():
    with trio.fail_after(30):
        assert await use_in_process_servers() == (2, 11)


def test_scheduler_and_worker_under_asyncio():
    async def bounded():
        return await asyncio.wait_for(use_in_process_servers(), 30)

    assert asyncio.run(bounded()) == (2, 11)


def pid_and_setting() -> tuple[int, str | None]:
    return os.getpid(), os.environ.get("TRIDENT_NANNY_SETTING")


async def use_a_nanny() -> tuple[bool, str | None, dict[str, int], str]:
    """(the task ran in the nanny's worker process, the env it saw, nthreads, address)"""
    async with (
        Scheduler() as s,
        Nanny(s.address, nthreads=2, env={"TRIDENT_NANNY_SETTING": "on"}) as n,
        Client(s.address, asynchronous=True, set_as_default=False) as client,
    ):
        pid, setting = await client.submit(pid_and_setting)
        assert n.worker_pid != os.getpid()
        return pid == n.worker_pid, setting, await client.nthreads(), n.worker_address


async def test_a_nanny_runs_its_worker_in_a_process_of_its_own_under_trio():
    with trio.fail_after(60):
        same, setting, threads, address = await use_a_nanny()
    assert (same, setting, threads) == (True, "on", {address: 2})


def test_a_nanny_under_asyncio_and_its_bad_arguments():
    async def bounded():
        return await asyncio.wait_for(use_a_nanny(), 60)

    same, setting, threads, address = asyncio.run(bounded())
    assert (same, setting, threads) == (True, "on", {address: 2})
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        Nanny("tcp://127.0.0.1:1", colour="blue")


def worker_view(dask_worker):
    return {
        "address": dask_worker.address,
        "status": dask_worker.status,
        "keys": sorted(dask_worker.data),
        "nthreads": dask_worker.nthreads,
        "tasks": sorted(dask_worker.state.tasks),
    }


def scheduler_view(dask_scheduler):
    return {
        "address": dask_scheduler.address,
        "tasks": {key: ts.state for key, ts in dask_scheduler.tasks.items()},
        "workers": {a: ws.nthreads for a, ws in dask_scheduler.workers.items()},
    }


def test_introspection_objects_have_dasks_attribute_names():
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        future = client.submit(inc, 1)
        assert future.result() == 2
        (address,) = client.nthreads()
        seen = client.run(worker_view)[address]
        assert seen == {
            "address": address,
            "status": "running",
            "keys": [future.key],
            "nthreads": 2,
            "tasks": [future.key],
        }
        view = client.run_on_scheduler(scheduler_view)
        assert view["tasks"] == {future.key: "memory"}
        assert view["workers"] == {address: 2}
        assert list(cluster.scheduler.workers) == [address]
        with pytest.raises(TypeError):
            cluster.scheduler.workers["x"] = None  # read-only


def test_local_cluster_get_logs_has_the_scheduler_and_every_worker():
    with LocalCluster(n_workers=2, processes=False) as cluster:
        logs = cluster.get_logs()
        assert set(logs) == {"Cluster", "Scheduler", *(h.address for h in cluster.workers.values())}
        assert all(isinstance(text, str) for text in logs.values())
        assert set(cluster.get_logs(cluster=False, workers=False)) == {"Scheduler"}


def test_security_temporary_secures_a_local_cluster():
    pytest.importorskip("cryptography")
    security = Security.temporary()
    assert security.tls
    with (
        LocalCluster(n_workers=1, processes=False, protocol="tls", security=security) as cluster,
        Client(cluster, security=security, set_as_default=False) as client,
    ):
        assert cluster.scheduler_address.startswith("tls://")
        assert client.submit(inc, 41).result() == 42
