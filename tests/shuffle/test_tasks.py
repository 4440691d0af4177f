"""The shuffle's task functions against dask's own: splitting input partitions into
bundles and unpacking output partitions gives, frame for frame, what dask's
single-stage task-based shuffle (``shuffle_group`` then ``_concat``) gives, for the
column types, indexes and options that take the fast column-by-column path and for
those left to pandas."""

from __future__ import annotations

import pickle

import pytest

pytest.importorskip("dask.dataframe", reason="the shuffle needs dask.dataframe (trident[dask])")

import numpy as np
import pandas as pd
from dask.dataframe.core import _concat
from dask.dataframe.shuffle import shuffle_group

from trident.protocol.serialize import sizeof
from trident.shuffle import tasks
from trident.worker import spill


def inputs(kind: str, n_inputs: int = 5, rows: int = 40) -> list:
    rng = np.random.RandomState(1)
    frames = []
    for i in range(n_inputs):
        n = 0 if i == 2 else rows + i  # one empty input partition
        frame = pd.DataFrame(
            {
                "k": rng.randint(0, 13, n),
                "f": rng.random_sample(n),
                "s": pd.array([f"s{j % 5}" for j in range(n)], dtype="string"),
                "o": pd.Series([("a", j) for j in range(n)], dtype=object),
                "t": pd.date_range("2001-01-01", periods=n, freq="h", tz="UTC"),
                "i": pd.array(rng.randint(0, 3, n), dtype="Int64"),
                "u": pd.array([None if j % 7 == 3 else f"u{j}" for j in range(n)], dtype="str"),
            },
            index=pd.Index(np.arange(n) + 1000 * i, name="idx"),
        )
        if kind == "datetime index":
            frame.index = pd.date_range("2000-01-01", periods=n, freq="s") + pd.Timedelta(days=i)
        elif kind == "range index":
            frame = frame.reset_index(drop=True)
        elif kind == "multi index":
            frame = frame.set_index(["k", "f"], append=True)
            frame["k"] = frame.index.get_level_values("k")
        elif kind == "categorical column":
            frame["c"] = pd.Categorical([f"c{j % (3 + i)}" for j in range(n)])
        elif kind == "categories differ":
            frame = frame.astype({"s": "category"})
        elif kind == "dtypes differ":
            frame["f"] = frame["f"].astype("float32" if i % 2 else "float64")
        elif kind == "series":
            frame = frame["k"]
        frames.append(frame)
    return frames


KINDS = [
    "plain",
    "datetime index",
    "range index",
    "multi index",
    "categorical column",
    "categories differ",
    "dtypes differ",
    "series",
]


def dasks(frames, column, npartitions, ignore_index):
    """dask's single-stage task shuffle of `frames`: output partition -> frame."""
    groups = [
        shuffle_group(frame, column, 0, npartitions, npartitions, ignore_index, npartitions)
        for frame in frames
    ]
    return [_concat([g[j] for g in groups], ignore_index) for j in range(npartitions)]


@pytest.fixture
def store(tmp_path):
    """A spill store that writes cold values as they are stored (no writer thread)."""
    buffer = spill.SpillBuffer(tmp_path / "spill", target=2**30)
    original = spill.COLD_QUEUE_BYTES
    spill.COLD_QUEUE_BYTES = 0
    yield buffer
    spill.COLD_QUEUE_BYTES = original
    buffer.close()


def on_disk(store, bundle, key):
    """`bundle` received cold, stored and read back: a `StoredBundle`."""
    store[key] = tasks.Bundle(bundle.frame, bundle.parts, bundle.offsets, bundle.nbytes, True)
    assert key in store.slow
    stored = store[key]
    assert isinstance(stored, tasks.StoredBundle)
    assert (stored.parts, stored.offsets, stored.nbytes) == (
        bundle.parts,
        bundle.offsets,
        bundle.nbytes,
    )
    return stored


@pytest.mark.parametrize("where", ["sent", "disk", "both"])
@pytest.mark.parametrize("ignore_index", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_split_then_unpack_equals_dasks_shuffle(kind, ignore_index, where, store):
    """Bundles sent to their owner (pickled), received cold and read back from its disk
    one output partition at a time, or some of each, unpack to dask's partitions."""
    frames = inputs(kind)
    column = None if kind == "series" else "k"
    npartitions = 7
    # owners interleaved, and one output partition (5) not computed
    owners = (0, 1, 0, 2, 1, -1, 0)
    expected = dasks(frames, column or [], npartitions, ignore_index)
    splits = [
        tasks.split_partition(frame, column or [], npartitions, ignore_index, owners)
        for frame in frames
    ]
    for owner in (0, 1, 2):
        # the bundles travel pickled, as between workers
        bundles = [pickle.loads(pickle.dumps(tasks.take_bundle(s, owner))) for s in splits]
        if kind in ("plain", "datetime index"):  # concatenated column by column
            assert all(bundle.columns() is not None for bundle in bundles)
        if where != "sent":
            bundles = [
                on_disk(store, bundle, f"{owner}-{i}") if where == "disk" or i % 2 else bundle
                for i, bundle in enumerate(bundles)
            ]
        for part in [j for j, o in enumerate(owners) if o == owner]:
            got = tasks.unpack_partition(bundles, part, ignore_index)
            want = expected[part]
            assert type(got) is type(want)
            assert type(got.index) is type(want.index)
            if isinstance(want, pd.Series):
                pd.testing.assert_series_equal(got, want, check_index_type=True)
            else:
                pd.testing.assert_frame_equal(got, want, check_index_type=True)
                assert list(got.columns) == list(want.columns)
            assert got.index.name == want.index.name


def test_partitions_column_and_empty_outputs():
    frame = pd.DataFrame({"_partitions": [3, 0, 3, 3, 1], "v": list("abcde")})
    split = tasks.split_partition(frame, "_partitions", 4, False, (0, 0, 1, 1))
    assert split.bundles[0].parts == (0, 1)
    assert split.bundles[1].parts == (2, 3)
    assert split.bundles[1].offsets == (0, 0, 3)
    assert list(tasks.unpack_partition([split.bundles[1]], 3, False)["v"]) == ["a", "c", "d"]
    empty = tasks.unpack_partition([split.bundles[1]] * 2, 2, True)
    assert len(empty) == 0
    assert list(empty.columns) == ["_partitions", "v"]


def test_bundles_are_sized_without_looking_inside():
    frames = inputs("plain", n_inputs=1, rows=1000)
    split = tasks.split_partition(frames[0], "k", 4, False, (0, 1, 0, 1))
    bundle = split.bundles[0]
    assert sizeof(bundle) == bundle.nbytes > 0
    assert sizeof(split) == split.nbytes == sum(b.nbytes for b in split.bundles.values())


def test_a_large_exchange_marks_its_received_bundles_cold():
    """The estimate is the bundle's bytes per output partition times the exchange's
    (input, output) pairs; a cold bundle shares the rows and asks to be written in
    sections; a copy of it is an ordinary bundle."""
    assert not tasks.exchange_is_large(100, 4, 40, None)  # no threshold: in memory
    assert not tasks.exchange_is_large(100, 4, 40, 1000)  # 25 x 40 = 1000, not above
    assert tasks.exchange_is_large(101, 4, 40, 1000)
    assert not tasks.exchange_is_large(100, 0, 40, 0)
    frame = inputs("plain", n_inputs=1, rows=100)[0]
    bundle = tasks.split_partition(frame, "k", 4, False, (0, 1, 0, 1)).bundles[0]
    estimate = -(-bundle.nbytes * 8 // len(bundle.parts))  # 8 pairs, rounded up
    assert tasks.receive_bundle(bundle) is bundle
    assert tasks.receive_bundle(bundle, 8, estimate) is bundle
    cold = tasks.receive_bundle(bundle, 8, estimate - 1)
    assert cold is not bundle
    assert cold.frame is bundle.frame
    assert (cold.parts, cold.offsets, cold.nbytes) == (bundle.parts, bundle.offsets, bundle.nbytes)
    assert cold.__trident_cold__() == "parts"
    assert spill.cold_kind(cold) == "parts"
    assert bundle.__trident_cold__() is None
    copy = pickle.loads(pickle.dumps(cold))  # sent or spilled: an ordinary bundle
    assert copy.__trident_cold__() is None
    pd.testing.assert_frame_equal(copy.frame, bundle.frame)


def test_unpacks_read_only_their_partitions_rows_from_disk(store, monkeypatch):
    """A cold bundle is written one section per output partition; an unpack reads its
    own partition's section of each bundle (about its rows' bytes, nothing else), and
    the partition owns its memory: its arrow strings are not views of what was read."""
    frames = inputs("plain", n_inputs=4, rows=4000)
    groups = (0,) * 8
    splits = [tasks.split_partition(frame, "k", 8, False, groups) for frame in frames]
    memory = [split.bundles[0] for split in splits]
    stored = [on_disk(store, bundle, f"b{i}") for i, bundle in enumerate(memory)]
    read = []
    preadv = spill.os.preadv

    def counting(fd, buffers, offset):
        n = preadv(fd, buffers, offset)
        read.append(n)
        return n

    monkeypatch.setattr(spill.os, "preadv", counting)
    total = sum(bundle.frame.memory_usage(deep=True).sum() for bundle in memory)
    for part in range(8):
        read.clear()
        got = tasks.unpack_partition(stored, part, False)
        want = tasks.unpack_partition(memory, part, False)
        pd.testing.assert_frame_equal(got, want)
        # one read per bundle with rows for it (one, for an empty partition's dtypes)
        assert len(read) == max(1, sum(len(b.piece(part, False)) > 0 for b in memory))
        rows = sum(len(bundle.piece(part, False)) for bundle in memory)
        assert sum(read) < 2 * total * rows / sum(len(frame) for frame in frames) + 4000
        strings = got["u"].array._pa_array
        assert strings.num_chunks == 1  # copied into one chunk of its own
    # in memory, the unpacked strings view the bundles' (no copy is needed)
    strings = tasks.unpack_partition(memory[:1], 0, False)["u"].array._pa_array
    source = memory[0].frame["u"].array._pa_array.chunk(0).buffers()[2].address
    assert strings.chunk(0).buffers()[2].address == source


@pytest.mark.parametrize("kind", KINDS)
def test_stored_bundles_sent_elsewhere_become_ordinary_bundles(kind, store):
    """An unpack that runs on another worker gets the stored bundle pickled: every
    section is read and the bundle is the one that was stored."""
    frame = inputs(kind, n_inputs=2, rows=60)[1]
    bundle = tasks.split_partition(frame, [] if kind == "series" else "k", 4, False, (0,) * 4)
    original = bundle.bundles[0]
    copy = pickle.loads(pickle.dumps(on_disk(store, original, "b")))
    assert type(copy) is tasks.Bundle
    assert (copy.parts, copy.offsets, copy.nbytes) == (
        original.parts,
        original.offsets,
        original.nbytes,
    )
    if isinstance(original.frame, pd.Series):
        pd.testing.assert_series_equal(copy.frame, original.frame)
    else:
        pd.testing.assert_frame_equal(copy.frame, original.frame)


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("2000-01-01", periods=10_000, freq="s", name="t"),
        pd.date_range("2000-01-01", periods=10_000, freq="s", unit="us"),
        pd.date_range("2000-01-01", periods=10_000, freq="D", tz="Europe/Paris"),
        pd.timedelta_range(0, periods=10_000, freq="min", name="d"),
    ],
)
def test_datetime_indexes_travel_as_buffers_and_come_back_equal(index):
    from trident.protocol.serialize import dumps, loads

    order = np.random.RandomState(0).permutation(len(index))
    frame = pd.DataFrame({"v": np.arange(len(index), dtype=float)}, index=index).take(order)
    bundle = tasks.Bundle.of(frame, (0, 1), (0, 2, len(index)))
    payload = dumps(bundle)
    back = loads(payload)
    pd.testing.assert_frame_equal(back.frame, frame)
    assert (back.parts, back.offsets, back.nbytes) == (bundle.parts, bundle.offsets, bundle.nbytes)
    if isinstance(index.dtype, np.dtype):  # numpy pickles these values in-band
        assert len(payload.header) < frame.index.nbytes
        assert sum(memoryview(b).nbytes for b in payload.buffers) >= 2 * frame.index.nbytes
