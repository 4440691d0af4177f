"""dask collections on trident: compute, persist and normalize_collection, dask's own
``compute()``/``persist()`` with a trident client as the default, and dask graphs of
``Task``/``Alias``/``DataNode`` objects. dask is in the ``test`` extra; without it (a
minimal install) this module is skipped, since these features need dask."""

from __future__ import annotations

import subprocess
import sys

import pytest

dask = pytest.importorskip("dask", reason="dask collections need dask (trident[dask])")

import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dask._task_spec import Alias, DataNode, List, Task, TaskRef  # noqa: E402

from trident import Client, Future, get_worker  # noqa: E402

from ..inprocess import in_process_client  # noqa: E402


def inc(x):
    return x + 1


def worker_address(_):
    return get_worker().address


@pytest.fixture
def client():
    with in_process_client() as client:
        yield client


def test_the_default_client_is_dasks_scheduler(client):
    assert dask.config.get("scheduler") is client
    assert dask.config.get("dataframe.shuffle.method") == "tasks"
    ran_on = dask.delayed(worker_address)(1).compute()
    assert ran_on in client.nthreads()
    client.close()
    assert dask.config.get("scheduler", None) is None  # dask's settings are back


def test_arrays(client):
    x = da.ones((200, 200), chunks=(50, 50))
    assert (x + x.T).sum().compute() == 80000
    future = client.compute(x.sum())
    assert isinstance(future, Future)
    assert future.result() == 40000
    assert np.array_equal(client.compute(x[:2, :2], sync=True), np.ones((2, 2)))
    persisted = client.persist(x * 2)
    graph = dict(persisted.__dask_graph__())
    assert all(isinstance(value, Future) for value in graph.values())
    assert persisted.sum().compute() == 80000
    assert client.compute([x.sum(), 5, x.max()], sync=True) == [40000, 5, 1]


def test_compute_restricts_outputs_as_dask_does(client):
    first, second = sorted(client.nthreads())
    parts = [dask.delayed(worker_address)(i) for i in range(4)]
    total = dask.delayed(lambda *xs: (worker_address(0), xs))(*parts)
    ran_on, _ = client.compute(total, workers=[first], sync=True)
    assert ran_on == first  # the output; its inputs may run anywhere
    other = dask.delayed(worker_address)(9)
    results = client.compute([total, other], workers={other: second, total: first}, sync=True)
    assert results[0][0] == first
    assert results[1] == second
    loose = client.compute(other, workers=["nobody"], allow_other_workers=[other], sync=True)
    assert loose in (first, second)


def test_bags_dataframes_and_delayed(client):
    bag = db.from_sequence(range(10), npartitions=3).map(inc).filter(lambda v: v % 2)
    assert bag.sum().compute() == 25
    frame = pd.DataFrame({"a": range(100), "b": [i % 3 for i in range(100)]})
    df = dd.from_pandas(frame, npartitions=4)
    pd.testing.assert_series_equal(df.groupby("b").a.sum().compute(), frame.groupby("b").a.sum())
    shuffled = df.set_index("b").compute().reset_index().sort_values(["b", "a"])
    assert shuffled.a.tolist() == frame.sort_values(["b", "a"]).a.tolist()
    persisted = df.persist()
    assert len(persisted) == 100
    (a, b) = dask.persist(df.a.sum(), df.b.max())
    assert (a.compute(), b.compute()) == (frame.a.sum(), 2)
    (persisted_bag,) = dask.persist(bag)
    assert sorted(persisted_bag.compute()) == [1, 3, 5, 7, 9]
    total = dask.delayed(sum)([dask.delayed(inc)(i) for i in range(10)])
    assert total.compute() == 55
    assert client.compute(total).result() == 55


def test_futures_inside_dask_graphs(client):
    future = client.submit(inc, 10)
    assert dask.delayed(inc)(future).compute() == 12
    assert client.compute(dask.delayed(sum)([future, future]), sync=True) == 22


def test_normalize_collection_reuses_futures(client):
    x = da.arange(10, chunks=5) + 1
    untouched = client.normalize_collection(x)
    assert untouched is x
    held = client.persist(x)
    normalized = client.normalize_collection(x)
    assert normalized is not x
    values = dict(normalized.__dask_graph__())
    assert any(isinstance(value, Future) for value in values.values())
    assert (normalized.sum().compute()) == 55
    del held


def test_dask_graph_nodes(client):
    graph = {
        "a": DataNode("a", 5),
        "b": Task("b", inc, TaskRef("a")),
        "c": Alias("c", "b"),
        ("d", 0): Task(("d", 0), sum, List(TaskRef("a"), TaskRef("c"))),
    }
    assert client.get(graph, ["c", ("d", 0)]) == [6, 11]
    with pytest.raises(KeyError, match="neither in the graph"):
        client.get({"e": Task("e", inc, TaskRef("missing"))}, "e")


async def test_compute_and_persist_in_async_code():
    from trident.testing import in_process_cluster

    async with (
        in_process_cluster(n_workers=2, threads_per_worker=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        x = da.ones((20, 20), chunks=10)
        assert await client.compute(x.sum()) == 400
        assert await client.compute(x.sum(), sync=True) == 400
        persisted = client.persist(x)
        assert await client.compute(persisted.sum()) == 400
        keys = [key for row in persisted.__dask_keys__() for key in row]
        assert len(await client.get(persisted.__dask_graph__(), keys)) == 4


def test_without_dask_compute_names_the_extra(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"trident\[dask\]"):
        client.compute([1])


SCRIPT = """
import subprocess
import sys
from trident import Client, LocalCluster, get_worker

def where(_):
    return get_worker().address

with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
    with Client(cluster) as client:
        assert "dask" not in sys.modules, "creating a client imported dask"
        import dask  # imported after the client: it becomes dask's scheduler now

        assert dask.config.get("scheduler") is client
        assert dask.delayed(where)(1).compute() in client.nthreads()
    assert dask.config.get("scheduler", None) is None
print("ok")
"""


def test_a_client_created_before_dask_is_imported_becomes_its_scheduler():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "ok", done.stderr
