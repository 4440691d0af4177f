"""The pytest plugin trident registers (entry point ``pytest11: trident``).

Fixtures (see `trident.testing`): ``trident_cluster_options``, ``trident_cluster``,
``trident_client`` and ``trident_blocking_client``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ..client.client import Client
from ..cluster.local import LocalCluster
from .cluster import in_process_cluster


@pytest.fixture
def trident_cluster_options() -> dict[str, Any]:
    """Options for the trident cluster fixtures; override this fixture to change them."""
    return {"n_workers": 2, "threads_per_worker": 1}


@pytest.fixture
async def trident_cluster(trident_cluster_options: dict[str, Any]) -> AsyncIterator[LocalCluster]:
    """An in-process cluster running in the test's trio loop."""
    async with in_process_cluster(**trident_cluster_options) as cluster:
        yield cluster


@pytest.fixture
async def trident_client(trident_cluster: LocalCluster) -> AsyncIterator[Client]:
    """An asynchronous client of `trident_cluster`."""
    async with Client(trident_cluster, asynchronous=True, set_as_default=False) as client:
        yield client


@pytest.fixture
def trident_blocking_client(trident_cluster_options: dict[str, Any]) -> Iterator[Client]:
    """A blocking client of an in-process cluster in trident's background loop."""
    options = dict(trident_cluster_options)
    options.setdefault("memory_limit", None)
    options.setdefault("dashboard_address", None)
    with LocalCluster(processes=False, **options) as cluster, Client(cluster) as client:
        yield client
