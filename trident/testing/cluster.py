"""`in_process_cluster`: a whole cluster inside the current trio loop, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..cluster.local import LocalCluster


@asynccontextmanager
async def in_process_cluster(
    n_workers: int = 2, threads_per_worker: int = 1, **options: Any
) -> AsyncIterator[LocalCluster]:
    """Start a scheduler and workers in this trio loop over in-process streams.

    Starts in a few milliseconds and is torn down when the block exits. Extra keyword
    arguments go to `LocalCluster` (``resources``, ``token``, ...). No dashboard is
    served unless `dashboard_address` is given (0 picks a free port).
    """
    options.setdefault("memory_limit", None)
    options.setdefault("dashboard_address", None)
    async with LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=False,
        asynchronous=True,
        **options,
    ) as cluster:
        yield cluster
