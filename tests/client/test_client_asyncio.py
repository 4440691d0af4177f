"""The asynchronous client in asyncio programs (anyio's asyncio backend)."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

from trident import Client, LocalCluster, as_completed, wait


def inc(x):
    return x + 1


def test_asyncio_client_of_a_blocking_cluster():
    with LocalCluster(n_workers=2, processes=False, protocol="tcp") as cluster:

        async def main():
            async with Client(cluster, asynchronous=True) as client:
                assert client.scheduler_address.startswith("tcp://")
                assert await client.submit(inc, 1) == 2
                futures = client.map(inc, range(50))
                assert sum(await client.gather(futures)) == sum(range(1, 51))
                [x] = await client.scatter([np.arange(100)])
                assert await client.submit(np.sum, x) == 4950
                done, _ = await wait(futures)
                assert len(done) == 50
                seen = [f async for f in as_completed(client.map(inc, range(5)))]
                assert len(seen) == 5
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.submit(asyncio_sleep_long, pure=False), 0.1)
                assert await client.submit(inc, 5) == 6

        asyncio.run(main())


def test_asyncio_client_of_a_tls_cluster_it_starts():
    async def main():
        async with (
            LocalCluster(n_workers=1, processes=False, security=True, asynchronous=True) as c,
            Client(c, asynchronous=True) as client,
        ):
            assert client.scheduler_address.startswith("tls://")
            assert await client.submit(inc, 1) == 2

    asyncio.run(main())


def asyncio_sleep_long():
    import time

    time.sleep(0.5)


def test_asyncio_client_starts_its_own_cluster():
    async def main():
        async with Client(asynchronous=True, n_workers=1, processes=False) as client:
            assert client.cluster is not None
            assert await client.submit(inc, 41) == 42
        assert client.cluster.status == "closed"

    asyncio.run(main())
