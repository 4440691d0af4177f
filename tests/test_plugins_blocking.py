"""Plugins, `Client.story` and `Client.as_current` through the blocking client, and
through the asynchronous client under asyncio (see tests/test_plugins.py)."""

from __future__ import annotations

import asyncio

import pytest

import trident
from trident import Client, LocalCluster

from .test_plugins import (
    EVENTS,
    Exploding,
    Recorder,
    Watcher,
    callback_with_worker,
    inc,
    watcher_events,
)


@pytest.fixture(autouse=True)
def clear_events():
    EVENTS.clear()
    yield
    EVENTS.clear()


def test_blocking_client_registers_plugins_story_and_as_current(trident_blocking_client):
    client = trident_blocking_client
    assert client.register_plugin(Recorder()) == {a: {"status": "OK"} for a in client.nthreads()}
    assert client.register_plugin(Watcher()) is None
    assert client.submit(inc, 1, key="blocking").result() == 2
    assert ("blocking", "processing", "memory") in [s[:3] for s in client.story("blocking")]
    assert ("transition", "blocking", "processing", "memory") in client.run_on_scheduler(
        watcher_events
    )
    with pytest.raises(ZeroDivisionError):
        client.register_plugin(Exploding())
    client.unregister_worker_plugin("recorder")
    assert {a for e, a, _ in EVENTS if e == "teardown"} == set(client.nthreads())
    with client.as_current():
        assert trident.get_client() is client


def test_async_client_under_asyncio():
    with LocalCluster(
        n_workers=2, processes=False, protocol="tcp", dashboard_address=None, memory_limit=None
    ) as cluster:

        async def main() -> None:
            async with Client(cluster, asynchronous=True, set_as_default=False) as client:
                assert set(await client.register_plugin(Recorder())) == set(client.nthreads())
                await client.register_plugin(Watcher())
                assert await client.submit(inc, 1, key="asyncio-key") == 2
                story = await client.story("asyncio-key")
                assert story[-1][:3] == ("asyncio-key", "processing", "memory")
                with pytest.raises(ZeroDivisionError):
                    await client.register_plugin(Exploding())
                await client.register_worker_callbacks(callback_with_worker)
                await client.unregister_worker_plugin("recorder")
                await client.unregister_scheduler_plugin("watcher")
                with client.as_current():
                    assert trident.get_client() is client

        asyncio.run(asyncio.wait_for(main(), 60))
    assert {a for e, a, _ in EVENTS if e == "teardown"} == {a for e, a, _ in EVENTS if e == "setup"}
