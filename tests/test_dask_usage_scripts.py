"""Scripts and notebook cells as dask users write them, with only the import changed.

Each test is a short snippet in the style of dask's documentation, the dask tutorial and
the dask-examples notebooks (written in our own words): the blocking `Client` as
scripts and notebooks use it, a few ``async with Client(asynchronous=True)`` snippets,
and the argument styles dask accepts. Where a result exists it is compared with dask's
local synchronous scheduler (``dask.config.set(scheduler="sync")``) or plain Python.
`tests/test_dask_compat.py` and `tests/client/test_dask*.py` cover the basic patterns;
these add the ones that broke or differed from dask.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

dask = pytest.importorskip("dask", reason="dask collections need dask (trident[dask])")

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from trident import (  # noqa: E402
    CancelledError,
    Client,
    Event,
    Future,
    LocalCluster,
    Lock,
    Queue,
    Semaphore,
    Variable,
    as_completed,
    default_client,
    fire_and_forget,
    futures_of,
    get_client,
    get_worker,
    progress,
    wait,
    worker_client,
)

from .inprocess import in_process_client  # noqa: E402


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int = 0) -> int:
    return x + y


def slowinc(x: int, delay: float = 0.05) -> int:
    time.sleep(delay)
    return x + 1


def div(x: float, y: float) -> float:
    return x / y


def where_am_i(_: Any = None) -> str:
    return get_worker().address


def on_sync_scheduler(build: Any) -> Any:
    with dask.config.set(scheduler="sync"):
        return build()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """One in-process cluster for the module (as a notebook keeps one client)."""
    with in_process_client(threads_per_worker=2, resources={"GPU": 1}) as client:
        yield client


@pytest.fixture(autouse=True)
def no_leaked_processes_or_threads():
    """The module-scoped cluster owns threads across tests; tests that start their own
    clusters close them in the test."""
    return


# --- starting a client ------------------------------------------------------------------


def test_client_keywords_from_the_docs_and_the_shape_of_scheduler_info():
    with Client(
        n_workers=2,
        threads_per_worker=1,
        memory_limit="1GB",
        dashboard_address=None,
        processes=False,
        timeout="30s",
    ) as client:
        assert Client.current() is client
        assert default_client() is client
        info = client.scheduler_info()
        assert info["type"] == "Scheduler"
        assert info["address"] == client.scheduler_address
        assert info["n_workers"] == 2
        assert info["total_threads"] == 2
        assert info["total_memory"] == 2 * 10**9
        assert info["started"] <= time.time()
        assert set(info["workers"]) == set(client.nthreads())
        for worker in info["workers"].values():
            assert worker["type"] == "Worker"
            assert worker["nthreads"] == 1
            assert worker["memory_limit"] == 10**9
            assert isinstance(worker["host"], str)
            assert {"id", "name", "status", "services", "resources", "last_seen"} <= set(worker)
        assert len(client.scheduler_info(n_workers=1)["workers"]) == 1
        assert client.scheduler_info(n_workers=1)["n_workers"] == 2
        assert list(client.nthreads().values()) == [1, 1]
        assert "workers=2" in repr(client)
        assert str(client) == repr(client)
        client.wait_for_workers(2, timeout="10s")
    client.close(timeout="5s")  # closing twice is fine
    assert client.status == "closed"
    with pytest.raises(ValueError, match="no trident client is running"):
        Client.current()


def test_local_cluster_keywords_dask_scripts_pass():
    with (
        LocalCluster(
            name="usage",
            n_workers=1,
            processes=False,
            silence_logs=logging.ERROR,
            ip="127.0.0.1",
            scheduler_kwargs={"port": 0, "dashboard_address": None},
            worker_dashboard_address=None,
            death_timeout=30,
        ) as cluster,
        Client(cluster) as client,
    ):
        assert cluster.name == "usage"
        assert cluster.log_level == "ERROR"
        assert cluster.dashboard_link is None
        assert client.submit(inc, 1).result(timeout=10) == 2
    with pytest.raises(TypeError, match="idle_timeout"):
        LocalCluster(n_workers=0, processes=False, scheduler_kwargs={"idle_timeout": 5})


def test_a_cluster_scaled_from_nothing_as_deployment_scripts_do():
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        cluster.scale(2)
        cluster.wait_for_workers(2, timeout=30)
        assert len(cluster.scheduler_info["workers"]) == 2
        client = cluster.get_client()
        assert cluster.get_client() is client  # the default client, once connected
        assert client.submit(inc, 1).result(timeout=10) == 2
        client.close()
        with pytest.raises(TimeoutError):
            cluster.wait_for_workers(3, timeout=0.2)


def test_client_current_refuses_a_context_local_lookup(client):
    assert Client.current(allow_global=True) is client
    assert default_client(client) is client
    assert get_client(resolve_address=False) is client
    with pytest.raises(ValueError, match="only the global default client"):
        Client.current(allow_global=False)


def test_client_current_inside_a_task_is_the_workers_client(client):
    def current_address(_: int) -> str:
        return Client.current().scheduler_address

    assert client.submit(current_address, 1).result(timeout=10) == client.scheduler_address


# --- futures ----------------------------------------------------------------------------


def test_submit_with_every_keyword_dask_documents(client):
    first = sorted(client.nthreads())[0]
    future = client.submit(
        add,
        1,
        2,
        key="my-sum",
        pure=False,
        retries=2,
        priority=10,
        resources={"GPU": 1},
        workers=[first],
        allow_other_workers=True,
    )
    assert future.key == "my-sum"
    assert future.result(timeout=10) == 3
    assert future.status == "finished"
    pinned = client.submit(where_am_i, workers=first, pure=False)
    assert pinned.result(timeout=10) == first


def test_map_keywords_and_several_iterables(client):
    futures = client.map(slowinc, range(20), delay=0.001, batch_size=5)
    assert client.gather(futures) == [x + 1 for x in range(20)]
    named = client.map(inc, range(3), key=["a", "b", "c"])
    assert [f.key for f in named] == ["a", "b", "c"]
    prefixed = client.map(inc, range(3), key="prefixed")
    assert all(f.key.startswith("prefixed-") for f in prefixed)
    assert client.gather(client.map(add, [1, 2], [10, 20])) == [11, 22]
    rows = np.arange(12).reshape(4, 3)
    assert client.gather(client.map(np.sum, rows)) == [int(r.sum()) for r in rows]


def triple(x: int) -> int:
    """Used by one test only, so that its first use is the one under test."""
    return 3 * x


def test_empty_inputs_as_a_loop_over_no_files_makes_them(client):
    """A script whose input list is empty maps, scatters and waits on nothing; the
    function it mapped over nothing is used later (it was once defined without a task,
    and the next message to the scheduler lost it: the scheduler closed the client's
    connection over a task naming an undefined function)."""
    assert client.map(triple, []) == []
    assert client.scatter([]) == []
    assert client.gather([]) == []
    assert client.compute([]) == []
    done, not_done = wait([])
    assert done == not_done == set()
    assert dask.compute() == ()
    assert client.submit(triple, 1).result(timeout=10) == 3
    assert client.gather(client.map(triple, [1, 1])) == [3, 3]
    assert client.status == "running"


def test_a_callable_object_carrying_an_array_is_not_mistaken_for_another(client):
    """Callables that pickle to the same header with different arrays out of band
    (a partial over an array, an object holding one) are different functions."""
    ones, twos = np.ones(50_000), np.full(50_000, 2.0)
    assert client.submit(functools.partial(np.sum, ones)).result(timeout=10) == 50_000
    assert client.submit(functools.partial(np.sum, twos)).result(timeout=10) == 100_000

    class Offset:
        def __init__(self, values: np.ndarray):
            self.values = values

        def __call__(self, x: int) -> float:
            return float(self.values.sum()) + x

    assert client.gather(client.map(Offset(ones), [0, 1])) == [50_000.0, 50_001.0]
    assert client.gather(client.map(Offset(twos), [0, 1])) == [100_000.0, 100_001.0]


def test_gather_skip_as_completed_and_wait_as_the_docs_use_them(client):
    failing = client.submit(div, 1, 0)
    good = client.map(inc, [1, 2])
    assert client.gather([failing, *good], errors="skip") == [2, 3]
    with pytest.raises(ZeroDivisionError):
        client.submit(inc, failing).result(timeout=10)  # dependents err the same way

    seen = sorted(
        result for _, result in as_completed(client.map(inc, range(3)), with_results=True)
    )
    assert seen == [1, 2, 3]
    errors = [
        type(result).__name__
        for _, result in as_completed([failing], with_results=True, raise_errors=False)
    ]
    assert errors == ["ZeroDivisionError"]

    finished = client.submit(inc, 7)
    finished.result(timeout=10)
    first = as_completed([finished])
    assert first.has_ready()
    assert first.next().result() == 8
    assert not first.has_ready()

    sequence = as_completed(client.map(inc, range(3)))
    sequence.update(client.map(inc, range(10, 12)))
    assert sequence.count() == 5
    gathered = []
    for batch in sequence.batches():
        gathered.extend(f.result() for f in batch)
    assert sorted(gathered) == [1, 2, 3, 11, 12]
    assert sequence.is_empty()

    slow = client.submit(slowinc, 1, delay=2, pure=False)
    quick = client.submit(inc, 100)
    done, not_done = wait([slow, quick], return_when="FIRST_COMPLETED")
    assert quick in done
    assert slow in not_done
    with pytest.raises(TimeoutError):
        slow.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        slow.result(timeout="50ms")  # dask takes text durations wherever a timeout goes
    with pytest.raises(TimeoutError):
        wait([slow], timeout="50ms")
    with pytest.raises(TimeoutError):
        wait([slow], timeout=0.05)
    with pytest.raises(TimeoutError, match=r"within 0\.05 s"):
        for _ in as_completed([slow], timeout=0.05):
            pass
    slow.cancel(msg="no longer needed")
    with pytest.raises(CancelledError, match="no longer needed"):
        slow.result(timeout=10)


def test_done_callbacks_and_release(client):
    called = threading.Event()
    results = []
    future = client.submit(inc, 41)

    def record(done: Future) -> None:
        results.append(done.result())
        called.set()

    future.add_done_callback(record)
    assert called.wait(10)
    assert results == [42]

    kept = client.submit(inc, 12345, pure=False)
    key = kept.result(timeout=10) and kept.key
    assert key in client.who_has()
    kept.release()
    kept.release()  # as in dask: releasing again does nothing
    deadline = time.monotonic() + 10
    while key in client.who_has() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert key not in client.who_has()


def test_scatter_broadcast_and_fire_and_forget(client):
    big = np.arange(200_000)
    remote = client.scatter(big, broadcast=True)
    assert isinstance(remote, Future)
    assert len(client.who_has([remote])[remote.key]) == 2
    assert client.submit(np.sum, remote).result(timeout=10) == big.sum()

    def store(x: int) -> None:
        Variable("usage-forgotten").set(x)

    fire_and_forget(client.submit(store, 7))
    assert Variable("usage-forgotten").get(timeout=10) == 7


def test_a_task_writes_into_its_input_array(client):
    """numpy code updates arrays in place; arrays a task receives are writable, as in
    dask, whatever their size and wherever they come from."""

    def make(n: int) -> np.ndarray:
        return np.ones(n)

    def normalize(values: np.ndarray) -> np.ndarray:
        values /= values.sum()
        return values

    first, second = sorted(client.nthreads())
    for n in (100, 1_000, 10_000, 1_000_000):
        made = client.submit(make, n, workers=[first])
        moved = client.submit(normalize, made, workers=[second])
        assert moved.result(timeout=10).sum() == pytest.approx(1.0)
        [scattered] = client.scatter([np.ones(n)])
        assert client.submit(normalize, scattered).result(timeout=10).sum() == pytest.approx(1.0)


def report_progress(step: int) -> Any:
    worker = get_worker()
    worker.log_event("usage-steps", {"step": step, "key": str(worker.get_current_task())})
    return worker.get_current_task()


def test_tasks_log_structured_events_from_their_worker(client):
    assert client.submit(report_progress, 1, key=("step", 1)).result(timeout=10) == ("step", 1)
    deadline = time.monotonic() + 10
    while not client.get_events("usage-steps") and time.monotonic() < deadline:
        time.sleep(0.02)
    [(when, event)] = client.get_events("usage-steps")
    assert event == {"step": 1, "key": "('step', 1)"}
    assert when <= time.time()


# --- dask collections on the client -------------------------------------------------------


def test_compute_styles_match_the_sync_scheduler(client):
    def build():
        parts = [dask.delayed(slowinc)(i, 0.001) for i in range(6)]
        return dask.delayed(sum)(parts), dask.delayed(max)(parts)

    expected = on_sync_scheduler(lambda: dask.compute(*build()))
    assert tuple(client.compute(list(build()), sync=True)) == expected
    assert dask.compute(*build(), scheduler=client) == expected
    assert dask.compute(*build(), scheduler="distributed") == expected
    assert dask.compute(*build(), scheduler="dask.distributed") == expected
    with dask.config.set(scheduler="distributed"):
        assert dask.compute(*build()) == expected
    ran_on = dask.delayed(where_am_i)(0).compute(scheduler="distributed")
    assert ran_on in client.nthreads()
    with dask.config.set(scheduler="threads"):  # a local scheduler still wins when asked
        assert dask.compute(*build()) == expected
    futures = client.compute(list(build()))
    assert [f.result(timeout=10) for f in futures] == list(expected)


def test_persisting_delayed_values_then_computing_them(client):
    rows = np.random.default_rng(0).random((20, 3))
    lazy = [dask.delayed(np.sum)(row) for row in rows]
    persisted = dask.persist(*lazy)
    assert all(futures_of(p) for p in persisted)
    assert list(dask.compute(*persisted)) == pytest.approx([row.sum() for row in rows])


def test_dataframe_persist_with_progress_then_queries(client, capsys):
    frame = pd.DataFrame(
        {"name": ["alice", "bob", "carol"] * 40, "amount": np.arange(120, dtype="float64")}
    )

    def build():
        return dd.from_pandas(frame, npartitions=6)

    df = build().persist()
    progress(df)
    assert "100%" in capsys.readouterr().out
    progress(df, notebook=False, multi=True, complete=True, group_by="prefix")
    assert "100% Completed | 6 / 6" in capsys.readouterr().out
    with pytest.raises(ValueError, match="group_by='spans'"):
        progress(df, group_by="spans")
    wait(df)
    assert len(futures_of(df)) == 6
    got = df.groupby("name").amount.mean().compute()
    expected = on_sync_scheduler(lambda: build().groupby("name").amount.mean().compute())
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index())
    assert len(df[df.amount > 100]) == on_sync_scheduler(lambda: len(build()[build().amount > 100]))


def test_array_persist_and_client_compute(client):
    def build():
        x = da.arange(10_000, chunks=1_000).reshape(100, 100)
        return (x - x.mean(axis=0)) ** 2

    kept = build().persist()
    assert len(futures_of(kept)) == len(list(dask.core.flatten(kept.__dask_keys__())))
    expected = on_sync_scheduler(lambda: build().sum().compute())
    assert client.compute(kept.sum()).result(timeout=10) == pytest.approx(expected)
    assert kept.std().compute() == pytest.approx(on_sync_scheduler(lambda: build().std().compute()))


#: attempts per key of `fails_twice` (the module-scoped cluster runs in this process)
_attempts: dict[int, int] = {}


def fails_twice(x: int) -> int:
    _attempts[x] = _attempts.get(x, 0) + 1
    if _attempts[x] <= 2:
        raise ConnectionError(f"flaky service, attempt {_attempts[x]}")
    return x


def test_dask_annotate_places_and_retries_tasks(client):
    first, second = sorted(client.nthreads())
    with dask.annotate(workers=[second]):
        pinned = [dask.delayed(where_am_i)(i) for i in range(6)]
    assert set(dask.compute(*pinned)) == {second}

    parts = [dask.delayed(where_am_i)(i + 10) for i in range(6)]
    with dask.annotate(workers=[first]):  # around the computation: every task
        assert set(client.compute(parts, sync=True)) == {first}

    with dask.annotate(retries=3):
        flaky = [dask.delayed(fails_twice, pure=False)(i) for i in range(4)]
    assert dask.compute(*flaky) == (0, 1, 2, 3)
    with dask.annotate(retries=3):
        submitted = client.map(fails_twice, range(100, 103))
    assert client.gather(submitted) == [100, 101, 102]
    with dask.annotate(resources={"GPU": 1}, priority=5):
        gpu = dask.delayed(where_am_i)(99)
        assert client.submit(where_am_i, 98, pure=False).result(timeout=10) in (first, second)
    assert gpu.compute() in (first, second)
    with dask.annotate(workers=[first]):
        explicit = client.submit(where_am_i, 97, workers=[second], pure=False)
    assert explicit.result(timeout=10) == second  # the call's own restriction wins


# --- coordination by name ------------------------------------------------------------------


def test_named_coordination_primitives(client):
    variable = Variable(name="usage-var")
    variable.set(client.submit(inc, 1))
    assert Variable("usage-var").get(timeout=10).result(timeout=10) == 2

    queue = Queue(name="usage-queue", maxsize=10)
    for i in range(5):
        queue.put(i)
    assert queue.qsize() == 5
    assert queue.get(batch=2) == [0, 1]
    assert queue.get(batch=True) == [2, 3, 4]
    with pytest.raises(TimeoutError):
        queue.get(timeout=0.05)

    lock = Lock(name="usage-lock")
    assert lock.acquire(timeout=1)
    assert not Lock("usage-lock").acquire(timeout=0.05)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()

    event = Event(name="usage-event")
    assert not event.wait(timeout=0.05)
    event.set()
    assert Event("usage-event").wait(timeout=1)

    def guarded(x: int) -> int:
        with Semaphore(max_leases=2, name="usage-sem"):
            return x

    assert client.gather(client.map(guarded, range(6))) == list(range(6))


def test_an_unnamed_lock_passed_to_tasks_as_a_keyword(client):
    lock = Lock()
    counter = Variable("usage-counter")
    counter.set(0)

    def bump(_: int, lock: Lock) -> None:
        with lock:
            shared = Variable("usage-counter")
            shared.set(shared.get() + 1)

    wait(client.map(bump, range(10), lock=lock))
    assert counter.get() == 10


# --- joblib as dask code selects it -------------------------------------------------------


def test_joblib_parallel_backend_dask_runs_on_the_trident_client(client):
    joblib = pytest.importorskip("joblib")

    with joblib.parallel_backend("dask"):
        got = joblib.Parallel()(joblib.delayed(where_am_i)(i) for i in range(6))
    assert set(got) <= set(client.nthreads())
    with joblib.parallel_backend("dask", scatter=[np.ones(3)], wait_for_workers_timeout=5):
        squares = joblib.Parallel(n_jobs=-1)(joblib.delayed(pow)(i, 2) for i in range(8))
    assert squares == [i * i for i in range(8)]


def test_scikit_learn_grid_search_under_the_dask_backend(client):
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = make_classification(n_samples=200, n_features=5, random_state=0)

    def search() -> GridSearchCV:
        grid = GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0, 10.0]}, cv=3)
        return grid.fit(X, y)

    local = search()
    with joblib.parallel_backend("dask"):
        remote = search()
    assert remote.best_params_ == local.best_params_
    assert remote.best_score_ == pytest.approx(local.best_score_)


# --- async def tasks written for asyncio ----------------------------------------------------


async def asyncio_task(x: int) -> tuple[int, str]:
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    return x + 1, type(loop).__module__.partition(".")[0] + ":" + get_worker().address


async def asyncio_parent(x: int) -> tuple[list[int], int]:
    """An asyncio task that uses the worker's client: it submits subtasks and awaits
    one future (a blocking client there: `gather` returns the values)."""
    await asyncio.sleep(0.01)
    client = get_client()
    values = client.gather(client.map(inc, range(3), pure=False))
    return values, await client.submit(inc, x, pure=False)


async def asyncio_forever() -> None:
    await asyncio.sleep(3600)


def test_async_def_tasks_that_use_asyncio_run_in_an_asyncio_loop(client):
    value, where = client.submit(asyncio_task, 1).result(timeout=10)
    assert value == 2
    library, _, address = where.partition(":")
    assert library == "asyncio"
    assert address in client.nthreads()
    results = client.gather(client.map(asyncio_task, range(4)))
    assert [r[0] for r in results] == [1, 2, 3, 4]
    assert client.submit(asyncio_parent, 10).result(timeout=10) == ([1, 2, 3], 11)
    hanging = client.submit(asyncio_forever)
    time.sleep(0.1)
    hanging.cancel()
    wait([hanging], timeout=10)
    assert hanging.cancelled()


# --- tasks that use the cluster, in worker processes ---------------------------------------


def fib(n: int) -> int:
    if n < 2:
        return n
    with worker_client() as inner:
        a, b = inner.submit(fib, n - 1), inner.submit(fib, n - 2)
        return a.result() + b.result()


def count_in_a_task(n: int) -> int:
    frame = dd.from_pandas(pd.DataFrame({"a": range(n)}), npartitions=3)
    return int(frame[frame.a > 2].a.count().compute())


def queue_a_future(x: int) -> None:
    Queue("usage-results").put(get_client().submit(inc, x))


def test_a_script_on_worker_processes():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        assert set(pids) == set(client.nthreads())
        assert len(set(pids.values())) == 2
        assert os.getpid() not in pids.values()
        assert client.submit(fib, 6).result(timeout=60) == 8
        assert client.submit(count_in_a_task, 10).result(timeout=60) == 7
        results = Queue("usage-results")
        for i in range(3):
            fire_and_forget(client.submit(queue_a_future, i))
        assert sorted(results.get(timeout=30).result(timeout=30) for _ in range(3)) == [1, 2, 3]
        # async def tasks written for asyncio, one left running when the workers go
        assert client.submit(asyncio_task, 5).result(timeout=30)[0] == 6
        assert client.submit(asyncio_parent, 1).result(timeout=30) == ([1, 2, 3], 2)
        client.submit(asyncio_forever)
        # dask's store into a numpy target: each worker process writes into its own
        # copy, as under dask; the target arrives writable, so the store tasks run
        x = np.arange(2_000).reshape(20, 100)
        da.store(da.from_array(x, chunks=(5, 50)).map_blocks(np.negative), np.zeros_like(x))
        old = client.submit(inc, 1)
        old.result(timeout=10)
        client.restart()
        assert old.status == "cancelled"
        assert set(client.run(os.getpid).values()).isdisjoint(pids.values())
        assert client.submit(inc, 1).result(timeout=30) == 2


# --- asynchronous clients -------------------------------------------------------------------


async def _asynchronous_notebook_cell() -> dict[str, Any]:
    async with Client(
        asynchronous=True, n_workers=1, processes=False, dashboard_address=None
    ) as client:
        info = await client.scheduler_info()
        first, second = await asyncio.gather(client.submit(inc, 1), client.submit(inc, 2))
        waited = await asyncio.wait_for(client.submit(inc, 3), 10)
        ran = await client.submit(asyncio_task, 10)
        variable = Variable("usage-async")
        await variable.set(5)
        return {
            "address": info["address"] == client.scheduler_address,
            "n_workers": info["n_workers"],
            "results": [first, second, waited, ran[0]],
            "variable": await variable.get(),
            "computed": await client.compute(dask.delayed(sum)([1, 2, 3])),
        }


def test_an_asynchronous_client_under_asyncio():
    assert asyncio.run(_asynchronous_notebook_cell()) == {
        "address": True,
        "n_workers": 1,
        "results": [2, 3, 4, 11],
        "variable": 5,
        "computed": 6,
    }
