"""A small in-process cluster whose workers have spill stores (the disk that large
exchanges use), and a way to count what went there."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from trident import Client, LocalCluster


@contextlib.contextmanager
def client_of_spilling_workers() -> Iterator[Client]:
    """A client of two in-process single-thread workers with a 4 GB memory limit each
    (a memory limit gives a worker its spill store)."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            memory_limit="4GB",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def cold_counts(client: Client) -> dict[str, Any]:
    """How many values each worker has stored cold (straight to disk)."""
    return client.run(lambda dask_worker: dask_worker.data.cold_count)


def wait_for_empty_disks(client: Client, timeout: float = 10) -> None:
    """Wait until no worker has a file in its spill directory (the exchange's keys are
    released once its results are gathered); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        files = client.run(lambda dask_worker: os.listdir(dask_worker.data.directory))
        if not any(files.values()):
            return
        assert time.monotonic() < deadline, f"files left on disk: {files}"
        time.sleep(0.05)
