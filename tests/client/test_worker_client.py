"""The client a worker lends to its tasks (`trident.client.worker_client`): a `Client`
composed over the worker's loop, with everything a user's client has."""

from __future__ import annotations

import trio

import trident
from trident._scheduler_file import read_scheduler_file
from trident.client.bridge import OwnLoop
from trident.client.worker_client import WorkerClient


def write_scheduler_file(path):
    client = trident.get_client()
    client.write_scheduler_file(path)
    return client.scheduler_address


def describe_client():
    client = trident.get_client()
    return type(client).__name__, client.asynchronous, client.status


async def test_the_workers_client_writes_a_scheduler_file(trident_cluster, tmp_path):
    path = tmp_path / "scheduler.json"
    async with trident.Client(trident_cluster, asynchronous=True, set_as_default=False) as client:
        with trio.fail_after(30):
            address = await client.submit(write_scheduler_file, str(path))
    written, security = read_scheduler_file(path)
    assert written == address
    assert security.token == trident_cluster.token


async def test_the_workers_client_is_a_client_over_the_workers_loop(trident_cluster):
    async with trident.Client(trident_cluster, asynchronous=True, set_as_default=False) as client:
        with trio.fail_after(30):
            kind, asynchronous, status = await client.submit(describe_client)
    # A plain Client: only the bridge differs. From a task's thread its calls block.
    assert (kind, asynchronous, status) == ("Client", False, "running")
    assert isinstance(client._bridge, OwnLoop)
    for handle in trident_cluster._runtime.workers.values():
        lent = handle.worker.client
        assert isinstance(lent, WorkerClient)
        assert type(lent.client) is trident.Client
        assert lent.client._bridge is lent


def total_through_local_client(n):
    with trident.local_client() as client:  # dask's older name for worker_client
        return sum(client.gather(client.map(abs, range(-n, 0))))


async def test_local_client_is_worker_client_under_dasks_older_name(trident_cluster):
    async with trident.Client(trident_cluster, asynchronous=True, set_as_default=False) as client:
        with trio.fail_after(30):
            assert await client.submit(total_through_local_client, 4) == 10
