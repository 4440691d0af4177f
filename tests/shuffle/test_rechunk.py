"""trident's worker-to-worker rechunk (`trident.shuffle.rechunk`): dask array rechunks
computed on a trident client give exactly what dask's sync scheduler gives with its
task-based rechunk, on threads and on worker processes, also when a worker dies
mid-rechunk; plain merges and splits stay dask's tasks; dask's config turns it off."""

from __future__ import annotations

import time

import pytest

dask = pytest.importorskip("dask", reason="dask collections need dask (trident[dask])")

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
from dask.local import get_sync  # noqa: E402

import trident.shuffle.expressions as expressions  # noqa: E402
import trident.shuffle.rechunk as rechunk  # noqa: E402
from trident import Client, LocalCluster  # noqa: E402
from trident.worker import spill  # noqa: E402

from .killing import kill_a_worker_holding  # noqa: E402
from .spilling import (  # noqa: E402
    client_of_spilling_workers,
    cold_counts,
    wait_for_empty_disks,
)


@pytest.fixture(autouse=True)
def small_blocks():
    """dask plans rechunks within ``array.chunk-size`` (128 MiB): these small arrays
    would be merged into one block and split again, which trident leaves to dask's
    tasks. At 64 KiB dask's plans have many-to-many stages, as for large arrays."""
    with dask.config.set({"array.chunk-size": "64KiB"}):
        yield


def arrays():
    rng = da.random.RandomState(0)
    x = rng.random_sample((300, 200), chunks=(300, 7))
    cube = rng.random_sample((20, 30, 40), chunks=(20, 3, 40))
    ints = da.arange(1000, chunks=37)
    return x, cube, ints


def computations():
    x, cube, ints = arrays()
    return {
        "columns to rows": lambda: x.rechunk((7, 200)).compute(),
        "uneven chunks": lambda: x.rechunk((13, (50, 20, 130))).compute(),
        "then summed": lambda: x.rechunk((7, 200)).sum(axis=1).compute(),
        "1-D": lambda: ints.rechunk(91).compute(),
        "3-D": lambda: cube.rechunk((4, 30, 7)).compute(),
        "persisted": lambda: x.rechunk((7, 200)).persist().compute(),
        "then transposed": lambda: (x.rechunk((10, 200)).T + 1).compute(),
    }


# rechunks that only merge or only split blocks: dask's tasks move nothing twice
PLAIN = {
    "only merges": lambda x: x.rechunk((300, 70)),
    "only splits": lambda x: x.rechunk((100, 7)),
}


def expected_results():
    with dask.config.set({"scheduler": "sync"}):
        return {name: compute() for name, compute in computations().items()}


def assert_same(got, expected):
    assert type(got) is type(expected)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.fixture
def layers(monkeypatch):
    """Records each rechunk that trident's rechunk builds."""
    built = []
    build = rechunk._rechunk_layer

    def recording(name, *args):
        built.append(name)
        return build(name, *args)

    monkeypatch.setattr(rechunk, "_rechunk_layer", recording)
    return built


def built_graph(collection, workers):
    """What `shuffle_graph` makes of `collection`'s graph as dask hands it to a
    scheduler, and its result computed from that graph by dask's sync scheduler."""
    found = {}

    def scheduler(dsk, keys, **kwargs):
        found["built"] = expressions.shuffle_graph(dsk, workers)
        graph = found["built"].graph if found["built"] is not None else dict(dsk.__dask_graph__())
        return get_sync(graph, keys)

    (value,) = dask.compute(collection, scheduler=scheduler)
    return found["built"], value


def test_results_equal_dasks_task_rechunk_on_threads(layers):
    expected = expected_results()
    assert not layers  # the sync scheduler rechunks with dask's tasks
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        for name, compute in computations().items():
            before = len(layers)
            assert_same(compute(), expected[name])
            assert len(layers) > before, f"{name} did not use trident's rechunk"


def test_plain_merges_and_splits_stay_dasks_tasks(layers):
    x, _, _ = arrays()
    with dask.config.set({"array.chunk-size": "128MiB"}):
        # dask merges the small array into one block, then splits it: no piece moves twice
        merged_then_split = x.rechunk((7, 200))
    with dask.config.set({"scheduler": "sync"}):
        expected = {name: make(x).compute() for name, make in PLAIN.items()}
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        for name, make in PLAIN.items():
            assert_same(make(x).compute(), expected[name])
        assert_same(merged_then_split.compute(), x.compute())
        assert not layers
        # many-to-many: every output block takes a piece of every input block
        y = x.rechunk((300, 1)).rechunk((1, 200))
        assert_same(y.compute(), x.compute())
        assert len(layers) == 1


def test_blocks_are_split_once_and_assembled_on_their_owners(layers):
    x, _, _ = arrays()
    y = x.rechunk((30, 200))  # 29 input blocks, 10 output blocks
    stages = [name for name in y.dask.layers if name.startswith("rechunk-merge-")]
    assert len(stages) == 2  # dask's plan has an intermediate stage
    built, value = built_graph(y, {"tcp://b": 1, "tcp://a": 1})
    assert built is not None
    np.testing.assert_array_equal(value, x.compute())
    (name,) = layers
    assert name == y.name
    splits = [k for k in built.graph if k[0] == f"rechunk-split-trident-{name}"]
    receives = [k for k in built.graph if k[0] == f"rechunk-receive-trident-{name}"]
    assert len(splits) == 29
    assert len(receives) == 29 * 2  # one per input block and owner group
    # contiguous runs of output blocks per worker, in address order
    assert [built.owners[(name, i, 0)] for i in range(10)] == ["tcp://a"] * 5 + ["tcp://b"] * 5
    for key in receives:
        assert built.owners[key] == ("tcp://a" if key[1] == 0 else "tcp://b")
    assert not any(
        str(key[0]).startswith("rechunk-merge-") for key in built.graph if key[0] != name
    )
    with dask.config.set({"trident.rechunk": False}):
        assert built_graph(y, {"tcp://a": 1})[0] is None


def test_dask_config_turns_it_off(layers):
    x, _, _ = arrays()
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        with dask.config.set({"trident.rechunk": False}):
            tasks = x.rechunk((7, 200)).compute()
        assert not layers
        assert_same(x.rechunk((7, 200)).compute(), tasks)
        assert len(layers) == 1


def slow_block(block):
    time.sleep(0.2)
    return block


def test_a_worker_dying_mid_rechunk_gives_the_exact_result():
    x, _, _ = arrays()
    x = x.map_blocks(slow_block, dtype=x.dtype)
    y = x.rechunk((7, 200))
    with dask.config.set({"scheduler": "sync"}):
        expected = y.compute()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=None, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        future = client.compute(y)
        kill_a_worker_holding(client, cluster, future, "rechunk-bundle-trident")
        assert_same(future.result(timeout=120), expected)


def test_process_workers():
    expected = expected_results()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=None, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        for name in ("columns to rows", "3-D"):
            assert_same(computations()[name](), expected[name])


def test_a_rechunk_above_the_disk_threshold_keeps_its_pieces_on_disk(monkeypatch):
    """The received pieces go to their owner's disk, in groups bounded by
    ``COLD_GROUP_BYTES`` (read back into memory while a group is assembled); results
    stay dask's sync scheduler's."""
    monkeypatch.setattr(rechunk, "COLD_GROUP_BYTES", 2 * 7 * 200 * 8)  # 2 output blocks
    # each received group is written as it is stored (not by the writer thread, which
    # skips values released before their turn), so every one is counted
    monkeypatch.setattr(spill, "COLD_QUEUE_BYTES", 0)
    x, _, _ = arrays()
    y = x.rechunk((7, 200))
    with dask.config.set({"scheduler": "sync"}):
        expected = y.compute()
    with (
        client_of_spilling_workers() as client,
        dask.config.set({"trident.exchange-disk-threshold": "100 KiB"}),  # x: 480 KB
    ):
        assert_same(y.compute(), expected)
        cold = cold_counts(client)
        rewritten = rechunk.rewrite_hlg(y.__dask_graph__(), sorted(cold))
        wait_for_empty_disks(client)  # released with the exchange's keys
    assert rewritten is not None
    receives = [key for key in dict(rewritten[0]) if "rechunk-receive-trident" in key[0]]
    groups = {key[1] for key in receives}
    # 43 output blocks of 7 rows, owned 22 and 21 in a row, in groups of 2; every
    # output block takes a piece of each of the 29 input blocks
    assert len(groups) == 11 + 11
    assert len(receives) == 22 * 29
    assert all(count > 0 for count in cold.values())
    assert sum(cold.values()) == len(receives)  # every received group went to disk
