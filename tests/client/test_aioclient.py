"""`trident.asyncio.AioClient` used as the reference's "Asyncio Client" section shows,
under asyncio (``asyncio.run``) and under trio."""

from __future__ import annotations

import asyncio
from operator import add

import pytest

from trident import Client, LocalCluster
from trident.asyncio import AioClient
from trident.testing import in_process_cluster


def test_await_an_aioclient_then_close_it():
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", token=None) as cluster:

        async def start_the_client():
            client = await AioClient(cluster.scheduler_address, set_as_default=False)
            assert isinstance(client, Client)
            assert client.asynchronous
            assert client.status == "running"
            a = client.submit(add, 1, 2)
            assert await a == 3
            await client.close()
            return client.status

        assert asyncio.run(start_the_client()) == "closed"


def test_async_with_an_aioclient_that_starts_its_own_cluster():
    async def gather_some_results():
        async with AioClient() as client:
            assert isinstance(client.cluster, LocalCluster)
            assert client.cluster.processes
            a = client.submit(add, 1, 2)
            b = client.submit(add, 10, 20)
            c = client.submit(add, a, b)
            result = await client.gather([c])
            return result, await a, client.cluster

    result, a, cluster = asyncio.run(gather_some_results())
    assert result == [33]
    assert a == 3
    assert cluster.status == "closed"  # closed with the client that started it


def test_an_aioclient_is_always_asynchronous():
    with pytest.raises(ValueError, match="always asynchronous"):
        AioClient("tcp://127.0.0.1:1", asynchronous=False)


async def test_an_aioclient_works_under_trio_too():
    async with (
        in_process_cluster(n_workers=1) as cluster,
        AioClient(cluster, set_as_default=False) as client,
    ):
        futures = client.map(add, range(5), range(5))
        assert await client.gather(futures) == [0, 2, 4, 6, 8]
