"""Administration with real worker processes: uploaded files reach workers that join
later, functions run in nannies, and retired workers under nannies stop for good or
come back empty."""

from __future__ import annotations

import os
import zipfile

import pytest
import trio

from trident import Client, LocalCluster, Scheduler, Security
from trident.worker.config import WorkerConfig
from trident.worker.nanny import BackOff, Nanny

from .test_admin import import_and_call, inc

SECURITY = Security(token="admin-test-token")


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(60):
        yield


def pids(dask_worker):
    return os.getpid()


async def test_uploaded_files_reach_workers_that_join_later(tmp_path):
    module = tmp_path / "trident_uploaded_proc_mod.py"
    module.write_text("def value():\n    return 'module'\n")
    package = tmp_path / "trident_uploaded_pkg.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("trident_uploaded_pkg/__init__.py", "def value():\n    return 'pkg'\n")
    async with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, asynchronous=True, dashboard_address=None
        ) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        await client.upload_file(str(module))
        await client.upload_file(str(package))
        await cluster.scale(2)
        await client.wait_for_workers(2)
        for address in client.nthreads():
            results = await client.gather(
                [
                    client.submit(import_and_call, name, workers=[address], pure=False)
                    for name in ("trident_uploaded_proc_mod", "trident_uploaded_pkg")
                ]
            )
            assert results == ["module", "pkg"]


@pytest.fixture
async def nanny_cluster():
    """A scheduler and two nanny-supervised worker processes in this trio run."""
    async with trio.open_nursery() as nursery:
        scheduler = await nursery.start(Scheduler("tcp://127.0.0.1:0", security=SECURITY).serve)
        nannies = [
            Nanny(
                scheduler.address,
                WorkerConfig(nthreads=1, name=f"n{i}"),
                security=SECURITY,
                backoff=BackOff(first=0.05),
            )
            for i in range(2)
        ]
        stopped = []

        async def supervise(nanny, *, task_status):
            await nanny.serve(task_status=task_status)
            stopped.append(nanny)

        for nanny in nannies:
            await nursery.start(supervise, nanny)
        async with Client(
            scheduler.address, security=SECURITY, asynchronous=True, set_as_default=False
        ) as client:
            await client.wait_for_workers(2)
            yield client, nannies, stopped
        nursery.cancel_scope.cancel()


def nanny_of(dask_worker):
    return (dask_worker.id, dask_worker.worker_address, os.getpid())


async def test_run_in_nannies_and_retire_with_and_without_closing(nanny_cluster):
    client, nannies, stopped = nanny_cluster
    found = await client.run(nanny_of, nanny=True)
    assert sorted(found) == sorted(client.nthreads())
    assert {nanny_id for nanny_id, _, _ in found.values()} == {n.id for n in nannies}
    assert all(pid == os.getpid() for _, _, pid in found.values())  # nannies live here
    worker_pids = await client.run(pids)
    assert os.getpid() not in worker_pids.values()

    data = client.map(inc, range(8))
    await client.gather(data)
    first, second = sorted(client.nthreads())
    # Without close_workers the nanny replaces its worker with a fresh, empty one.
    assert list(await client.retire_workers([first])) == [first]
    await client.wait_for_workers(2)
    assert first not in client.nthreads()
    assert await client.gather(data) == list(range(1, 9))
    # With close_workers the nanny stops too.
    (closing,) = [n for n in nannies if n.worker_address == second]
    assert list(await client.retire_workers([second], close_workers=True)) == [second]
    with trio.fail_after(20):
        while not stopped:
            await trio.sleep(0.02)
    assert stopped == [closing]
    await trio.sleep(0.3)
    assert len(client.nthreads()) == 1
    assert await client.gather(data) == list(range(1, 9))
