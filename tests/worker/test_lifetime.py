"""A worker with a `lifetime` asks to be retired when it is over: its data moves to the
workers that stay first (nothing is recomputed), then it stops (dask's ``--lifetime``,
what batch-job workers use to leave before their walltime)."""

from __future__ import annotations

import trio

from trident import Client
from trident.cli import build_parser
from trident.cluster.lending import lend_client
from trident.testing import in_process_cluster
from trident.worker.actor import Worker
from trident.worker.config import WorkerConfig

from ..polling import wait_until

CALLS: list[int] = []


def inc(x):
    CALLS.append(x)  # in-process workers: the test sees every call
    return x + 1


async def test_a_worker_leaves_after_its_lifetime_with_its_data_moved():
    async with (
        in_process_cluster(n_workers=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
        trio.open_nursery() as nursery,
    ):
        config = WorkerConfig(name="short-lived", lifetime="1s", lifetime_stagger="100ms")
        worker = Worker.from_config(
            cluster.scheduler_address,
            config,
            security=cluster.security,
            client_factory=lend_client,
        )
        assert (worker.lifetime, worker.lifetime_stagger) == (1.0, 0.1)
        await nursery.start(worker.serve)
        CALLS.clear()
        data = client.map(inc, range(10), workers=[worker.address])
        assert await client.gather(data) == list(range(1, 11))
        who_has = await client.who_has(data)
        assert all(list(holders) == [worker.address] for holders in who_has.values())
        await wait_until(lambda: worker.stopped, timeout=10)
        (staying,) = client.nthreads()
        assert staying != worker.address
        assert sorted((await client.has_what())[staying]) == sorted(f.key for f in data)
        assert await client.gather(data) == list(range(1, 11))
        assert sorted(CALLS) == list(range(10))  # moved, not recomputed


def test_the_worker_command_takes_a_lifetime_and_a_stagger():
    args = build_parser().parse_args(
        ["worker", "tcp://10.0.0.1:8786", "--lifetime", "55m", "--lifetime-stagger", "4m"]
    )
    assert (args.lifetime, args.lifetime_stagger) == (3300.0, 240.0)
    assert build_parser().parse_args(["worker", "tcp://10.0.0.1:8786"]).lifetime is None


def test_the_lifetime_travels_in_the_worker_settings():
    config = WorkerConfig(lifetime="55m", lifetime_stagger=30)
    assert WorkerConfig.from_settings(config.to_settings()) == config
    assert WorkerConfig().lifetime is None
