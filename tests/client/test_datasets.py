"""Published datasets and metadata, shared between clients, async and blocking."""

from __future__ import annotations

import gc

import pytest
import trio

from trident import Client, Future, get_client


def inc(x: int) -> int:
    return x + 1


def republish(source: str, target: str) -> int:
    """A task that reads a dataset and publishes a future of its own."""
    client = get_client()
    value = client.get_dataset(source)
    client.publish_dataset(client.submit(inc, value, pure=False), name=target)
    client.set_metadata(["tasks", target], "done")
    return value


async def test_datasets_are_shared_between_clients(trident_cluster, trident_client):
    with trio.fail_after(30):
        client = trident_client
        async with Client(trident_cluster, asynchronous=True, set_as_default=False) as other:
            future = other.submit(inc, 1)
            await other.publish_dataset(future, name="one")
            await other.publish_dataset(pair=[future, "label"], plain={"a": 1})
            del future
            gc.collect()
        # The publishing client left: the published futures kept their keys alive.
        assert await client.list_datasets() == ["one", "pair", "plain"]
        one = await client.get_dataset("one")
        assert isinstance(one, Future)
        assert one.client is client
        assert await one == 2
        pair = await client.datasets["pair"]
        assert pair[1] == "label"
        assert await pair[0] == 2
        with pytest.raises(KeyError, match="already exist: one"):
            await client.publish_dataset(3, name="one")
        await client.publish_dataset(3, name="one", override=True)
        assert await client.get_dataset("one") == 3
        await client.unpublish_dataset("one")
        await client.unpublish_dataset("one")  # gone already: nothing to do
        with pytest.raises(KeyError, match="Dataset 'one' not found"):
            await client.get_dataset("one")
        assert await client.get_dataset("one", default=None) is None
        assert [name async for name in client.datasets] == ["pair", "plain"]
        with pytest.raises(TypeError, match="blocking client"):
            client.datasets["x"] = 1
        with pytest.raises(ValueError, match="needs the value"):
            client.publish_dataset(name="nothing")


async def test_tasks_use_datasets_and_metadata(trident_client):
    with trio.fail_after(30):
        client = trident_client
        await client.publish_dataset(41, name="source")
        assert await client.submit(republish, "source", "target") == 41
        assert await (await client.get_dataset("target")) == 42
        assert await client.get_metadata(["tasks", "target"]) == "done"


async def test_metadata_nests_with_lists_of_keys(trident_client):
    with trio.fail_after(30):
        client = trident_client
        await client.set_metadata("x", 123)
        assert await client.get_metadata("x") == 123
        await client.set_metadata(["x", "y"], 123)  # replaces the leaf by a dict
        await client.set_metadata(["x", "w", "z"], 456)
        assert await client.get_metadata("x") == {"y": 123, "w": {"z": 456}}
        assert await client.get_metadata(["x", "w", "z"]) == 456
        await client.set_metadata("config", {"model": {"layers": 3}, "ids": {1: "one"}})
        assert await client.get_metadata(["config", "model", "layers"]) == 3
        assert await client.get_metadata(["config", "ids"]) == {1: "one"}
        assert await client.get_metadata(["config", "missing"], default="d") == "d"
        with pytest.raises(KeyError):
            await client.get_metadata(["x", "y", "deeper"])
        with pytest.raises(TypeError, match="strings"):
            client.set_metadata(["x", 1], 2)


def test_datasets_and_metadata_with_a_blocking_client(trident_blocking_client):
    client = trident_blocking_client
    client.datasets["numbers"] = [1, 2, 3]
    client.datasets["numbers"] = [4]  # assignment replaces, like a dict
    future = client.submit(inc, 10)
    client.publish_dataset(result=future)
    assert client.datasets["numbers"] == [4]
    assert client.get_dataset("result").result() == 11
    assert len(client.datasets) == 2
    assert "result" in client.datasets
    assert sorted(client.datasets) == ["numbers", "result"]
    del client.datasets["numbers"]
    with pytest.raises(KeyError):
        del client.datasets["numbers"]
    assert client.list_datasets() == ["result"]
    client.set_metadata(["a", "b"], [1, 2])
    assert client.get_metadata("a") == {"b": [1, 2]}
    assert client.get_metadata("nothing", None) is None
