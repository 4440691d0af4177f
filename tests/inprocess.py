"""A blocking client on an in-process `LocalCluster`, for module-scoped fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trident import Client, LocalCluster


@contextmanager
def in_process_client(threads_per_worker: int = 1, **options: Any) -> Iterator[Client]:
    """A client of two in-process workers (no memory limit, no dashboard); `options`
    go to `LocalCluster` (``resources={"GPU": 1}``, ...)."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=threads_per_worker,
            processes=False,
            memory_limit=None,
            dashboard_address=None,
            **options,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
