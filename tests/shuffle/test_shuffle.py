"""trident's worker-to-worker shuffle (`trident.shuffle`): dask dataframe shuffles,
set_index and hash joins computed on a trident client give exactly what dask's sync
scheduler gives with its task-based shuffle, on threads and on worker processes, also
when a worker dies mid-shuffle; the outputs run on the workers that own them; dask's
config turns it off."""

from __future__ import annotations

import time

import pytest

dask = pytest.importorskip("dask", reason="dask collections need dask (trident[dask])")

import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dask._expr import FinalizeCompute  # noqa: E402

import trident.shuffle.expressions as expressions  # noqa: E402
from trident import Client, LocalCluster  # noqa: E402
from trident.worker import spill  # noqa: E402

from .killing import kill_a_worker_holding  # noqa: E402
from .spilling import (  # noqa: E402
    client_of_spilling_workers,
    cold_counts,
    wait_for_empty_disks,
)


def frames():
    rng = np.random.RandomState(0)
    left = pd.DataFrame(
        {
            "x": rng.randint(0, 60, 3000),
            "y": np.arange(3000.0),
            "s": [f"v{i % 7}" for i in range(3000)],
            "r": rng.random_sample(3000),
        }
    )
    right = pd.DataFrame({"x": np.arange(0, 80, 2), "z": np.arange(40)})
    return dd.from_pandas(left, npartitions=7), dd.from_pandas(right, npartitions=3)


def computations():
    df, right = frames()
    return {
        "shuffle": lambda: df.shuffle("x").compute(),
        "shuffle into more partitions": lambda: df.shuffle("x", npartitions=11).compute(),
        "shuffle into fewer partitions": lambda: df.shuffle(["s", "x"], npartitions=3).compute(),
        "set_index": lambda: df.set_index("x").compute(),
        "merge inner": lambda: dd.merge(df, right, on="x", how="inner").compute(),
        "merge left": lambda: dd.merge(df, right, on="x", how="left", broadcast=False).compute(),
        "head of a shuffle": lambda: df.shuffle("x").head(5),
    }


def expected_results():
    with dask.config.set({"scheduler": "sync", "dataframe.shuffle.method": "tasks"}):
        return {name: compute() for name, compute in computations().items()}


def assert_same(got, expected):
    assert type(got) is type(expected)
    pd.testing.assert_frame_equal(got, expected)


@pytest.fixture
def layers(monkeypatch):
    """Records each shuffle that trident's shuffle builds."""
    built = []
    build = expressions._shuffle_layer

    def recording(node, slots):
        built.append(node._name)
        return build(node, slots)

    monkeypatch.setattr(expressions, "_shuffle_layer", recording)
    return built


def test_results_equal_dasks_task_shuffle_on_threads(layers):
    expected = expected_results()
    assert not layers  # the sync scheduler shuffles with dask's tasks
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        for name, compute in computations().items():
            before = len(layers)
            assert_same(compute(), expected[name])
            assert len(layers) > before, f"{name} did not use trident's shuffle"


def test_outputs_are_owned_in_proportion_to_threads(layers):
    df, _ = frames()
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        expr = FinalizeCompute(df.shuffle("x", npartitions=8).expr).optimize()
    built = expressions.shuffle_graph(expr, {"tcp://b": 1, "tcp://a": 2})
    assert built is not None
    (name,) = layers
    # slots in address order, one per thread: a, a, b, a, a, b, ...
    assert [built.owners[(name, i)] for i in range(8)] == ["tcp://a", "tcp://a", "tcp://b"] * 2 + [
        "tcp://a",
        "tcp://a",
    ]
    splits = [key for key in built.graph if key[0].startswith("shuffle-split-")]
    bundles = [key for key in built.graph if key[0].startswith("shuffle-bundle-")]
    receives = [key for key in built.graph if key[0].startswith("shuffle-receive-")]
    assert (len(splits), len(bundles), len(receives)) == (7, 14, 14)  # one per input and owner
    assert {built.owners[key] for key in receives if key[2] == 0} == {"tcp://a"}
    with dask.config.set({"trident.shuffle": False}):
        assert expressions.shuffle_graph(expr, {"tcp://a": 1}) is None


def test_dask_config_turns_it_off(layers):
    df, _ = frames()
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        with dask.config.set({"trident.shuffle": False}):
            tasks = df.shuffle("x").compute()
        assert not layers
        assert_same(df.shuffle("x").compute(), tasks)
        assert len(layers) == 1


def slow_partition(frame):
    time.sleep(0.2)
    return frame


def test_a_worker_dying_mid_shuffle_gives_the_exact_result():
    df, right = frames()
    df = df.map_partitions(slow_partition, meta=df._meta)
    with dask.config.set({"scheduler": "sync", "dataframe.shuffle.method": "tasks"}):
        expected = dd.merge(df, right, on="x", how="left", broadcast=False).compute()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=None, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        future = client.compute(dd.merge(df, right, on="x", how="left", broadcast=False))
        kill_a_worker_holding(client, cluster, future, "shuffle-bundle")
        assert_same(future.result(timeout=120), expected)


def test_process_workers():
    expected = expected_results()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=None, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        for name in ("shuffle", "set_index", "merge inner", "merge left"):
            assert_same(computations()[name](), expected[name])


def test_bundles_hold_groups_of_an_owners_partitions(layers, monkeypatch):
    """Each bundle holds at most GROUP_SIZE output partitions of one owner, so an
    unpack depends on that group's bundles only; results stay dask's."""
    monkeypatch.setattr(expressions, "GROUP_SIZE", 3)
    df, _ = frames()
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        expr = FinalizeCompute(df.shuffle("x", npartitions=11).expr).optimize()
    built = expressions.shuffle_graph(expr, {"tcp://a": 1, "tcp://b": 1})
    assert built is not None
    name = layers[-1]
    # a owns 0, 2, 4, 6, 8, 10 (two groups), b owns 1, 3, 5, 7, 9 (two groups)
    receives = sorted({key[2] for key in built.graph if key[0] == f"shuffle-receive-{name}"})
    assert receives == [0, 1, 2, 3]  # GROUP_SIZE is 32 by default: one group each
    owner_of_group = {
        key[2]: built.owners[key] for key in built.graph if key[0] == f"shuffle-receive-{name}"
    }
    assert owner_of_group == {0: "tcp://a", 1: "tcp://a", 2: "tcp://b", 3: "tcp://b"}
    dependencies = {i: {dep[2] for dep in built.graph[(name, i)].dependencies} for i in range(11)}
    assert dependencies[0] == dependencies[4] == {0}
    assert dependencies[6] == dependencies[10] == {1}
    assert dependencies[1] == {2}
    assert dependencies[9] == {3}
    with dask.config.set({"scheduler": "sync", "dataframe.shuffle.method": "tasks"}):
        expected = df.shuffle("x", npartitions=11).compute()
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        assert_same(df.shuffle("x", npartitions=11).compute(), expected)


def test_dask_config_sets_the_disk_threshold():
    assert expressions.disk_threshold() == expressions.DISK_THRESHOLD == 256 * 2**20
    for value, expected in [("1 MiB", 2**20), (4096, 4096), (None, None), (False, None)]:
        with dask.config.set({"trident.exchange-disk-threshold": value}):
            assert expressions.disk_threshold() == expected
    for bad in ["lots", True, -1, [1]]:
        with (
            dask.config.set({"trident.exchange-disk-threshold": bad}),
            pytest.raises(ValueError, match=r"trident\.exchange-disk-threshold"),
        ):
            expressions.disk_threshold()


def test_a_shuffle_above_the_disk_threshold_keeps_its_bundles_on_disk(monkeypatch):
    """Every received bundle goes to its owner's disk (the workers have spill stores:
    a memory limit), written one section per output partition, of which each unpack
    reads its own; results stay dask's.
    Below the threshold nothing goes to disk."""
    monkeypatch.setattr(spill, "COLD_QUEUE_BYTES", 0)  # written as stored: all counted
    expected = expected_results()
    with client_of_spilling_workers() as client:
        with dask.config.set({"trident.exchange-disk-threshold": "1 KiB"}):
            for name in ("shuffle", "set_index", "merge left"):
                assert_same(computations()[name](), expected[name])
        cold = cold_counts(client)
        assert len(cold) == 2
        assert all(count > 0 for count in cold.values())
        # every receive (input partition x owner's group, 2 owners) of the shuffles of
        # the 7-partition frame, 3 times, and of the merge's 3-partition right side
        assert sum(cold.values()) == 3 * 7 * 2 + 3 * 2
        wait_for_empty_disks(client)  # released with the exchange's keys
        assert_same(computations()["shuffle"](), expected["shuffle"])  # 256 MiB default
        assert cold_counts(client) == cold
