"""`WorkerConfig`: one type carries every worker setting from each entry point to the
`Worker`, in this process and in worker processes (under a nanny)."""

from __future__ import annotations

import json

import pytest
import trio

from trident import Client, LocalCluster, Scheduler, Security
from trident.worker.config import WorkerConfig
from trident.worker.memory import MemoryThresholds
from trident.worker.nanny import Nanny

SECURITY = Security(token="config-test-token")


def worker_settings(dask_worker):
    """What a worker was built with, read inside it."""
    return {
        "local_directory": dask_worker.local_directory,
        "heartbeat_interval": dask_worker.heartbeat_interval,
        "preloaded": getattr(dask_worker, "preloaded", None),
    }


def preload_file(tmp_path):
    path = tmp_path / "setup_worker.py"
    path.write_text("def dask_setup(worker):\n    worker.preloaded = 'yes'\n")
    return str(path)


def test_settings_round_trip_through_json():
    config = WorkerConfig(
        nthreads=3,
        name="w",
        memory_limit="2GB",
        resources={"GPU": 1},
        local_directory="/tmp/x",
        heartbeat_interval="250ms",
        memory=MemoryThresholds(target=None),
        preload="mymodule",
    )
    assert config.memory_limit == 2 * 10**9
    assert config.heartbeat_interval == 0.25
    assert config.preload == ("mymodule",)
    settings = json.loads(json.dumps(config.to_settings()))
    assert WorkerConfig.from_settings(settings) == config


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError, match="unknown worker settings: colour"):
        WorkerConfig.from_settings({"colour": "blue"})
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        LocalCluster(n_workers=0, processes=False, asynchronous=True, colour="blue")


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "processes"])
def test_local_cluster_settings_reach_the_worker(processes, tmp_path):
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            local_directory=tmp_path / "spill",
            heartbeat_interval="300ms",
            preload=[preload_file(tmp_path)],
            reconnect_timeout=7,
        ) as cluster,
        Client(cluster) as client,
    ):
        (settings,) = client.run(worker_settings).values()
        assert settings == {
            "local_directory": str(tmp_path / "spill"),
            "heartbeat_interval": 0.3,
            "preloaded": "yes",
        }
        assert client.run(lambda dask_worker: dask_worker.reconnect_timeout) == {
            address: 7 for address in client.scheduler_info()["workers"]
        }


async def test_nanny_passes_every_setting_to_its_worker(tmp_path):
    config = WorkerConfig(
        name="n0", local_directory=str(tmp_path), heartbeat_interval=0.2, preload=("json",)
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(Scheduler("tcp://127.0.0.1:0", security=SECURITY).serve)
            await nursery.start(Nanny(scheduler.address, config, security=SECURITY).serve)
            async with Client(scheduler.address, security=SECURITY, asynchronous=True) as client:
                (settings,) = (await client.run(worker_settings)).values()
            nursery.cancel_scope.cancel()
    assert settings == {
        "local_directory": str(tmp_path),
        "heartbeat_interval": 0.2,
        "preloaded": None,
    }
