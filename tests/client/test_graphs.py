"""Raw task graphs (`Client.get`) and the executor, through both facades; no dask needed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from operator import add

import pytest
import trio

from trident import CancelledError, Future, get_worker
from trident.client.graphs import GraphPlan, trident_key
from trident.protocol import messages as m


def inc(x):
    return x + 1


def where(x):
    return (get_worker().address, x)


def fail(x):
    raise ValueError(f"bad {x}")


GRAPH = {
    "x": 1,
    "y": (inc, "x"),
    "z": (add, "y", (inc, "x")),  # a nested task
    "alias": "z",
    "chain": "alias",
    ("part", 0): (sum, ["x", "y", "z"]),  # keys inside a list, a tuple key
    ("part", 1): (max, ("x", "y")),  # keys inside a tuple
    "tasks": [(inc, 1), "x", [(inc, "y")]],  # a literal list holding tasks and keys
    "text": "not a key",
}


def test_plans_name_keys_resolve_aliases_and_order_dependencies_first():
    plan = GraphPlan(GRAPH, {})
    assert plan.names["chain"] == plan.names["alias"] == "z"
    # Keys travel in a reversible form: a tuple key as its repr (see trident._keys).
    assert plan.names[("part", 0)] == "('part', 0)"
    assert trident_key(("inc-abc", 1, 2)) == "('inc-abc', 1, 2)"
    assert trident_key(3) == "3"
    assert trident_key("3") == "'3'"
    order = [task.key for task in plan.order()]
    assert order.index("x") < order.index("y") < order.index("z") < order.index("('part', 0)")
    assert "alias" not in plan.tasks
    assert "chain" not in plan.tasks
    with pytest.raises(ValueError, match="cycle"):
        GraphPlan({"a": (inc, "b"), "b": (inc, "a")}, {}).order()
    with pytest.raises(ValueError, match="cycle"):
        GraphPlan({"a": "b", "b": "a"}, {})
    # In a raw graph a value that names no key is a literal, as in dask.
    assert GraphPlan({"a": (inc, "x"), "b": "missing"}, {}).tasks["b"].args == ("missing",)


def test_get_on_a_raw_graph(trident_blocking_client):
    client = trident_blocking_client
    assert client.get(GRAPH, "y") == 2
    assert client.get(GRAPH, ["z", "chain", [("part", 0), ("part", 1)]]) == [4, 4, [7, 2]]
    assert client.get(GRAPH, "tasks") == [2, 1, [3]]
    assert client.get(GRAPH, "text") == "not a key"
    futures = client.get(GRAPH, ["y", "z"], sync=False)
    assert all(isinstance(f, Future) for f in futures)
    assert client.gather(futures) == [2, 4]
    with pytest.raises(KeyError, match="nope"):
        client.get(GRAPH, "nope")
    with pytest.raises(ValueError, match="bad 1"):
        client.get({"a": 1, "b": (fail, "a")}, "b")


def test_a_graph_can_use_futures_and_restrictions(trident_blocking_client):
    client = trident_blocking_client
    known = client.submit(inc, 41)
    graph = {"f": known, "g": (add, "f", known), "h": (inc, "g")}
    assert client.get(graph, ["f", "h"]) == [42, 85]
    (address, *_) = sorted(client.nthreads())
    placed = client.get({"a": (where, 1), "b": (where, "a")}, "b", workers=[address])
    assert placed == (address, (address, 1))


def test_restrictions_per_key_as_in_dask(trident_blocking_client):
    client = trident_blocking_client
    first, second = sorted(client.nthreads())
    graph = {"a": (where, 1), ("b", 0): (where, "a"), "c": (where, ("b", 0))}
    placed = client.get(graph, ["a", ("b", 0), "c"], restrictions={"a": [first], ("b", 0): second})
    assert placed[0][0] == first
    assert placed[1][0] == second
    tight = client.get({"d": (where, 1)}, "d", restrictions={"d": ["nobody"]}, sync=False)
    loose = client.get(
        {"e": (where, 1)}, "e", restrictions={"e": ["nobody"]}, loose_restrictions=["e"]
    )
    assert loose[0] in (first, second)  # may run elsewhere
    time.sleep(0.2)
    assert tight.status == "pending"  # waits for a worker called "nobody"
    client.cancel([tight])
    with pytest.raises(TypeError, match="restrictions must map keys to workers"):
        client.get({"f": (inc, 1)}, "f", restrictions=[first])


def test_resources_per_key_or_for_every_task(trident_blocking_client):
    client = trident_blocking_client
    graph = {"a": (inc, 1), "b": (inc, "a")}
    waiting = client.get(graph, "b", resources={"b": {"GPU": 1}}, sync=False)
    time.sleep(0.2)
    assert waiting.status == "pending"  # no worker has a GPU; "a" ran
    assert client.get({"x": (inc, 1)}, "x", resources={}) == 2
    client.cancel([waiting])


async def test_a_graph_is_one_submission(trident_client, trident_cluster):
    state = trident_cluster.scheduler.state
    graphs = []
    original = state._client_handlers[m.UpdateGraph]

    def counting(client, message):
        graphs.append([spec.key for spec in message.tasks])
        original(client, message)

    state._client_handlers[m.UpdateGraph] = counting
    chain = {"k0": 0} | {f"k{i}": (inc, f"k{i - 1}") for i in range(1, 200)}
    assert await trident_client.get(chain, "k199") == 199
    assert len(graphs) == 1
    assert len(graphs[0]) == 200
    assert graphs[0] == [f"k{i}" for i in range(200)]


async def test_get_in_async_code(trident_client):
    assert await trident_client.get(GRAPH, ["z", "chain"]) == [4, 4]
    (future,) = trident_client.get(GRAPH, ["y"], sync=False)
    assert await future == 2


# --- the executor ---------------------------------------------------------------------


def slow(seconds):
    time.sleep(seconds)
    return seconds


RELEASE = threading.Event()


def held():
    """Runs until the test sets RELEASE (in-process workers)."""
    RELEASE.wait(10)
    return "released"


def test_executor_works_with_concurrent_futures_and_asyncio(trident_blocking_client):
    client = trident_blocking_client
    with client.get_executor(retries=1) as executor:
        futures = [executor.submit(inc, i) for i in range(5)]
        done, _ = concurrent.futures.wait(futures)
        assert sorted(f.result() for f in done) == [1, 2, 3, 4, 5]
        assert list(executor.map(inc, range(3))) == [1, 2, 3]
        assert [f.result() for f in concurrent.futures.as_completed(futures)]
        with pytest.raises(ValueError, match="bad 3"):
            executor.submit(fail, 3).result()
        pure = [executor.submit(slow, 0) for _ in range(2)]
        assert pure[0].task.key != pure[1].task.key  # pure=False: every call runs

        async def in_asyncio():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, inc, 10)

        assert asyncio.run(in_asyncio()) == 11
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(inc, 1)


def test_executor_cancels_its_tasks(trident_blocking_client):
    RELEASE.clear()
    executor = trident_blocking_client.get_executor()
    running = executor.submit(slow, 0.5)
    cancelled = executor.submit(held)
    assert cancelled.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        cancelled.result()
    assert cancelled.task.cancelled()
    executor.shutdown(wait=True)
    assert running.result() == 0.5
    other = trident_blocking_client.get_executor()
    stuck = other.submit(held)
    other.shutdown(wait=False)
    with pytest.raises(concurrent.futures.CancelledError):
        stuck.result(timeout=5)
    with pytest.raises(CancelledError):
        stuck.task.result()
    RELEASE.set()


async def test_executor_of_an_async_client(trident_client):
    executor = trident_client.get_executor()
    future = executor.submit(inc, 1)
    with trio.fail_after(10):
        while not future.done():
            await trio.sleep(0.01)
    assert future.result() == 2
    failing = executor.submit(fail, 2)
    with trio.fail_after(10):
        while not failing.done():
            await trio.sleep(0.01)
    assert isinstance(failing.exception(), ValueError)
