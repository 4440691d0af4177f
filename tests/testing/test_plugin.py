"""The pytest plugin works in a user's project, as docs/testing.md shows."""

from __future__ import annotations

import time

from trident import Client
from trident.testing import in_process_cluster

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

def double(x):
    return 2 * x

@pytest.mark.trio
async def test_double(trident_client):
    assert await trident_client.submit(double, 21) == 42

def test_double_blocking(trident_blocking_client):
    assert trident_blocking_client.submit(double, 4).result() == 8

@pytest.mark.trio
async def test_options(trident_client):
    info = await trident_client.scheduler_info()
    assert len(info["workers"]) == 3
    assert all(w["resources"] == {"GPU": 1} for w in info["workers"].values())

@pytest.fixture
def trident_cluster_options():
    return {"n_workers": 3, "threads_per_worker": 2, "resources": {"GPU": 1}}
"""


def test_fixtures_in_a_user_project(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


ANYIO_TESTS = """
import pytest

pytestmark = pytest.mark.anyio

def double(x):
    return 2 * x

@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request):
    return request.param

async def test_double(trident_client):
    assert await trident_client.submit(double, 21) == 42

async def test_cluster(trident_cluster):
    assert len(trident_cluster.workers) == 2

def test_double_blocking(trident_blocking_client):
    assert trident_blocking_client.submit(double, 4).result() == 8
"""


def test_fixtures_under_anyios_plugin_without_pytest_trio(pytester):
    pytester.makepyfile(test_user=ANYIO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:trio")
    result.assert_outcomes(passed=5)  # each async test on both backends, the sync one once


NO_PLUGIN_TESTS = """
import pytest

@pytest.mark.trio
async def test_async(trident_client):
    pass

def test_sync(trident_cluster):
    pass
"""


def test_without_an_async_plugin_the_message_says_what_to_install(pytester):
    pytester.makepyfile(test_user=NO_PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:trio")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*trident_cluster and trident_client are async trident fixtures, and no async test "
            "plugin runs this test. Either install pytest-trio (pip install pytest-trio)*",
            "*trident_cluster is an async trident fixture*@pytest.mark.anyio*anyio_backend*",
        ]
    )
    result.stdout.no_fnmatch_line("*with no plugin*")


async def test_in_process_cluster_starts_fast():
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        async with in_process_cluster() as cluster:
            timings.append(time.perf_counter() - start)
            async with Client(cluster, asynchronous=True, set_as_default=False) as client:
                assert await client.submit(len, "abc") == 3
    assert min(timings) < 0.1
