"""dask-documented usage, written the way a dask user writes it, run on trident.

Each test follows a pattern from dask.distributed's documentation (futures, waiting,
scattering, dask collections on a client, coordination primitives, actors, diagnostics,
asynchronous use) in our own words, on an in-process `LocalCluster`, and compares what
it gets with the same computation on dask's local synchronous scheduler
(``dask.config.set(scheduler="sync")``), or with plain Python where dask has no
scheduler-side counterpart.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

dask = pytest.importorskip("dask", reason="dask collections need dask (trident[dask])")

import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import trio  # noqa: E402

from trident import (  # noqa: E402
    Client,
    Lock,
    Queue,
    Variable,
    as_completed,
    fire_and_forget,
    futures_of,
    get_task_stream,
    performance_report,
    wait,
)

from .inprocess import in_process_client  # noqa: E402


def square(x: int) -> int:
    return x * x


def add(x: int, y: int) -> int:
    return x + y


def total(values: list[int]) -> int:
    return sum(values)


def slowly(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def on_sync_scheduler(function: Callable[[], Any]) -> Any:
    """What `function` returns when dask runs collections in the calling thread."""
    with dask.config.set(scheduler="sync"):
        return function()


def assert_same(got: Any, expected: Any) -> None:
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got, expected)
    elif isinstance(expected, np.ndarray):
        np.testing.assert_allclose(got, expected)
    else:
        assert got == expected


@pytest.fixture
def client() -> Iterator[Client]:
    with in_process_client(threads_per_worker=2) as client:
        yield client


# --- futures ---------------------------------------------------------------------------


def test_submit_map_and_gather_build_a_small_pipeline(client):
    squares = client.map(square, range(10))
    pairs = [client.submit(add, a, b) for a, b in zip(squares[::2], squares[1::2], strict=True)]
    summed = client.submit(total, pairs)
    assert summed.result() == sum(x * x for x in range(10))
    assert client.gather(squares) == [x * x for x in range(10)]
    expected = on_sync_scheduler(
        lambda: dask.compute(dask.delayed(total)([dask.delayed(square)(x) for x in range(10)]))[0]
    )
    assert summed.result() == expected


def test_as_completed_yields_every_future_once_with_its_result(client):
    futures = client.map(slowly, range(6), [0.02 * (6 - i) for i in range(6)])
    seen = dict(as_completed(futures, with_results=True))
    assert sorted(seen.values()) == list(range(6))
    assert set(seen) == set(futures)

    growing = as_completed(client.map(square, range(3)))
    results = []
    for future in growing:
        results.append(future.result())
        if len(results) == 1:
            growing.add(client.submit(square, 10))
    assert sorted(results) == [0, 1, 4, 100]


def test_wait_returns_done_and_not_done(client):
    quick = client.submit(square, 3)
    slow = client.submit(slowly, 1, 5.0)
    done, not_done = wait([quick, slow], return_when="FIRST_COMPLETED")
    assert quick in done
    assert slow in not_done
    slow.cancel()
    done, not_done = wait(client.map(square, range(4)))
    assert not not_done
    assert sorted(f.result() for f in done) == [0, 1, 4, 9]


def test_scattered_data_feeds_tasks_without_moving_through_the_client(client):
    array = np.arange(1_000_000, dtype="float64")
    [remote] = client.scatter([array])
    assert client.submit(np.sum, remote).result() == array.sum()
    broadcast = client.scatter(array, broadcast=True)
    assert len(client.who_has([broadcast])[broadcast.key]) == 2
    several = client.scatter(range(5))
    assert client.gather(client.map(square, several)) == [x * x for x in range(5)]
    by_name = client.scatter({"a": 1, "b": 2})
    assert client.submit(add, by_name["a"], by_name["b"]).result() == 3


def test_fire_and_forget_runs_a_task_nobody_keeps(client):
    slot = Variable("fire-and-forget-result")

    def store(x: int) -> None:
        Variable("fire-and-forget-result").set(x * 2)

    fire_and_forget(client.submit(store, 21))
    assert slot.get(timeout=10) == 42


# --- dask collections on the client -------------------------------------------------


def test_delayed_compute_and_persist_match_the_sync_scheduler(client):
    def build():
        parts = [dask.delayed(square)(i) for i in range(8)]
        return dask.delayed(total)(parts)

    expected = on_sync_scheduler(lambda: build().compute())
    assert build().compute() == expected
    persisted = build().persist()
    assert futures_of(persisted)
    assert persisted.compute() == expected
    (value,) = dask.compute(build())
    assert value == expected


def test_array_compute_and_persist_match_the_sync_scheduler(client):
    def build():
        x = da.arange(40_000, chunks=5_000).reshape(200, 200).rechunk((50, 100))
        return (x + x.T).mean(axis=0) - x.std()

    expected = on_sync_scheduler(lambda: build().compute())
    assert_same(build().compute(), expected)
    kept = build().persist()
    assert {f.key for f in futures_of(kept)} == set(dask.core.flatten(kept.__dask_keys__()))
    assert_same(kept.compute(), expected)
    assert_same(client.compute(build()).result(), expected)


def test_dataframe_groupby_and_shuffle_match_the_sync_scheduler(client):
    frame = pd.DataFrame(
        {"key": [i % 7 for i in range(500)], "value": np.arange(500, dtype="float64")}
    )

    def build():
        df = dd.from_pandas(frame, npartitions=5)
        means = df.groupby("key").value.mean()
        merged = df.merge(means.rename("mean").to_frame(), left_on="key", right_index=True)
        return means, (merged.value - merged["mean"]).abs().sum()

    expected_means, expected_spread = on_sync_scheduler(lambda: dask.compute(*build()))
    means, spread = dask.compute(*build())
    assert_same(means.sort_index(), expected_means.sort_index())
    assert spread == pytest.approx(expected_spread)
    persisted = dd.from_pandas(frame, npartitions=5).set_index("key").persist()
    assert len(futures_of(persisted)) >= 1
    assert_same(
        persisted.value.sum().compute(),
        on_sync_scheduler(lambda: dd.from_pandas(frame, npartitions=5).value.sum().compute()),
    )


def test_bag_pipeline_matches_the_sync_scheduler(client):
    words = ["alpha beta", "beta gamma", "gamma delta alpha", "alpha"] * 5

    def build():
        bag = db.from_sequence(words, npartitions=4)
        return bag.map(str.split).flatten().frequencies(sort=True)

    expected = on_sync_scheduler(lambda: build().compute())
    assert build().compute() == expected
    assert build().persist().compute() == expected

    def folded():
        return db.from_sequence(range(100), npartitions=5).filter(lambda n: n % 3)

    expected_sum = on_sync_scheduler(lambda: folded().fold(operator.add).compute())
    assert folded().fold(operator.add).compute() == expected_sum


def test_client_compute_and_persist_take_collections(client):
    x = da.ones((100, 100), chunks=25).sum()
    future = client.compute(x)
    assert future.result() == on_sync_scheduler(x.compute)
    (kept,) = client.persist([da.ones(10, chunks=5) * 3])
    assert_same(kept.compute(), on_sync_scheduler((da.ones(10, chunks=5) * 3).compute))


# --- coordination ---------------------------------------------------------------------


def test_a_queue_hands_futures_and_values_between_tasks_and_client(client):
    jobs = Queue("compat-jobs")

    def producer(n: int) -> int:
        queue = Queue("compat-jobs")
        for i in range(n):
            queue.put(i * 10)
        return n

    assert client.submit(producer, 4).result() == 4
    assert [jobs.get(timeout=10) for _ in range(4)] == [0, 10, 20, 30]
    jobs.put(client.submit(square, 6))
    assert jobs.get(timeout=10).result() == 36


def test_a_lock_lets_one_task_at_a_time_update_a_variable(client):
    counter = Variable("compat-counter")
    counter.set(0)

    def bump(_: int) -> None:
        with Lock("compat-lock"):
            shared = Variable("compat-counter")
            shared.set(shared.get() + 1)

    wait(client.map(bump, range(20)))
    assert counter.get() == 20


# --- actors ---------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.n = 0

    def increment(self, by: int = 1) -> int:
        self.n += by
        return self.n


def test_an_actor_keeps_state_across_calls_as_a_local_object_would(client):
    remote = client.submit(Tally, actor=True).result()
    local = Tally()
    for by in (1, 2, 3):
        assert remote.increment(by).result() == local.increment(by)
    assert remote.n == local.n


# --- joblib ---------------------------------------------------------------------------


def test_joblib_runs_its_calls_on_the_cluster_in_order(client):
    joblib = pytest.importorskip("joblib")
    with joblib.parallel_backend("trident"):
        got = joblib.Parallel(n_jobs=-1)(joblib.delayed(square)(i) for i in range(12))
    assert got == joblib.Parallel(n_jobs=1)(joblib.delayed(square)(i) for i in range(12))
    assert len(client.get_task_stream(start="1h")) >= 1


# --- diagnostics ----------------------------------------------------------------------


def test_task_stream_and_performance_report_cover_a_collection(client, tmp_path):
    x = da.arange(1_000, chunks=100).sum()
    report = tmp_path / "dask-report.html"
    with performance_report(filename=str(report)), get_task_stream() as ts:
        assert x.compute() == on_sync_scheduler(x.compute)
    assert len(ts.data) >= 10
    assert {"key", "name", "worker", "status", "startstops"} <= set(ts.data[0])
    assert "arange" in report.read_text()


# --- asynchronous use -------------------------------------------------------------------


async def _asynchronous_session() -> tuple[int, int, list[int]]:
    async with Client(
        asynchronous=True,
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        dashboard_address=None,
    ) as client:
        future = client.submit(square, 12)
        collection = dask.delayed(total)([dask.delayed(square)(i) for i in range(5)])
        computed = await client.compute(collection)
        gathered = await client.gather(client.map(square, range(3)))
        return await future, computed, gathered


def test_asynchronous_client_under_asyncio():
    expected = (144, on_sync_scheduler(lambda: sum(i * i for i in range(5))), [0, 1, 4])
    assert asyncio.run(_asynchronous_session()) == expected


def test_asynchronous_client_under_trio():
    assert trio.run(_asynchronous_session) == (144, 30, [0, 1, 4])
