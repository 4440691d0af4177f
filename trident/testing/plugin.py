"""The pytest plugin trident registers (entry point ``pytest11: trident``).

Fixtures (see `trident.testing`): ``trident_cluster_options``, ``trident_cluster``,
``trident_client`` and ``trident_blocking_client``.

The async fixtures run under either async test plugin: pytest-trio (a test marked
``@pytest.mark.trio``, or ``trio_mode = true``) or anyio's own (a test marked
``@pytest.mark.anyio``, with an ``anyio_backend`` fixture; anyio is installed with
trident). A test that uses them under neither fails at setup with a message that says
what to install and how to mark the test, instead of pytest's "no plugin" error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ..client.client import Client
from ..cluster.local import LocalCluster
from .cluster import in_process_cluster

#: The fixtures that need an async test plugin.
ASYNC_FIXTURES = ("trident_cluster", "trident_client")

NO_ASYNC_PLUGIN = (
    "{fixtures} {verb} async trident fixture{s}, and no async test plugin runs this test. "
    "Either install pytest-trio (pip install pytest-trio) and mark the test "
    "@pytest.mark.trio (or set trio_mode = true in your pytest configuration), or use "
    "anyio's plugin (installed with trident): mark the test @pytest.mark.anyio and define "
    "a fixture anyio_backend that returns 'trio'. See trident's docs/testing.md."
)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that uses the async fixtures under no async plugin, saying why."""
    used = [name for name in ASYNC_FIXTURES if name in getattr(item, "fixturenames", ())]
    if not used or _async_plugin_runs(item):
        return
    pytest.fail(
        NO_ASYNC_PLUGIN.format(
            fixtures=" and ".join(used),
            verb="are" if len(used) > 1 else "is an",
            s="s" if len(used) > 1 else "",
        ),
        pytrace=False,
    )


def _async_plugin_runs(item: pytest.Item) -> bool:
    """Whether pytest-trio or anyio's plugin will run `item`'s async fixtures."""
    config = item.config
    if config.pluginmanager.hasplugin("trio"):
        try:
            trio_mode = bool(config.getini("trio_mode"))
        except ValueError:
            trio_mode = False
        if trio_mode or item.get_closest_marker("trio") is not None:
            return True
    return config.pluginmanager.hasplugin("anyio") and "anyio_backend" in getattr(
        item, "fixturenames", ()
    )


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
