"""Behaviour a dask user relies on, kept as dask.distributed has it (issue 14).

Each test runs a pattern found in real dask code against trident's public API, with
the result dask documents for it.
"""

from __future__ import annotations

import time

import pytest
import trio

from trident import Client, SchedulerError


def inc(x: int) -> int:
    return x + 1


# --- scatter -----------------------------------------------------------------------------


def test_scatter_splits_a_range_into_one_future_per_item(trident_blocking_client):
    client = trident_blocking_client
    futures = client.scatter(range(10))
    assert isinstance(futures, list)
    assert len(futures) == 10
    assert client.gather(futures) == list(range(10))


def test_scatter_splits_iterators_and_generators(trident_blocking_client):
    client = trident_blocking_client
    from_generator = client.scatter(x * x for x in range(4))
    assert client.gather(from_generator) == [0, 1, 4, 9]
    from_iterator = client.scatter(iter(["a", "b"]))
    assert client.gather(from_iterator) == ["a", "b"]


# --- datasets ----------------------------------------------------------------------------


def test_publish_dataset_takes_a_dict_and_unpublish_a_list(trident_blocking_client):
    client = trident_blocking_client
    future = client.submit(inc, 1)
    client.publish_dataset({"a": future, "b": [1, 2]})
    client.publish_dataset(c=3)
    assert client.list_datasets() == ["a", "b", "c"]
    assert client.get_dataset("a").result() == 2
    client.unpublish_dataset(["a", "b"])
    assert client.list_datasets() == ["c"]
    client.unpublish_dataset(("c",))
    assert client.list_datasets() == []


def test_a_dataset_name_of_the_wrong_type_is_refused_and_the_client_keeps_working(
    trident_blocking_client,
):
    client = trident_blocking_client
    client.publish_dataset(x=1)
    with pytest.raises(TypeError, match="dataset names are strings, not list"):
        client.unpublish_dataset([["x"]])
    with pytest.raises(TypeError, match="dataset names are strings, not int"):
        client.get_dataset(3)
    with pytest.raises(ValueError, match=r"one \{name: value\} dict"):
        client.publish_dataset(1, 2)
    assert client.list_datasets() == ["x"]
    assert client.submit(inc, 1).result(timeout=10) == 2


async def test_the_scheduler_answers_an_invalid_request_with_an_error(trident_client):
    """A request whose fields fail validation is answered with an error to that request;
    the connection and the client's futures survive it."""
    from trident.protocol import messages as m

    client = trident_client
    with trio.fail_after(20):
        future = client.submit(inc, 1)
        assert await future == 2
        with pytest.raises(SchedulerError, match=r"invalid request: .*expected array"):
            await client._core.request(lambda rid: m.UnpublishDataset(rid, "not-a-list"))  # type: ignore[arg-type]
        assert client.status == "running"
        assert await client.submit(inc, 2) == 3
        assert await future == 2


# --- the default client ------------------------------------------------------------------


def test_the_newest_open_client_becomes_the_default_when_the_default_closes():
    from trident import LocalCluster, Lock, Queue, Variable, default_client

    with LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, memory_limit=None
    ) as cluster:
        with Client(cluster) as first, Client(cluster) as second:
            assert default_client() is second
            third = Client(cluster)
            assert default_client() is third
            third.close()
            assert default_client() is second
            second.close()
            assert default_client() is first
            queue = Queue("q")
            queue.put(1)
            assert queue.get(timeout=10) == 1
            variable = Variable("v")
            variable.set(2)
            assert variable.get(timeout=10) == 2
            lock = Lock("l")
            assert lock.acquire(timeout=10)
            lock.release()
            assert first.submit(inc, 1).result(timeout=10) == 2
        with pytest.raises(ValueError, match="no trident client is running"):
            default_client()


# --- logs --------------------------------------------------------------------------------


def test_scheduler_logs_start_at_start_up_and_stay_out_of_unconfigured_logging(capsys):
    import logging

    from trident import LocalCluster

    level_before = logging.getLogger("trident.scheduler").level
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        texts = [text for _, text in client.get_scheduler_logs()]
        assert "scheduler: listening at" in texts[0]
        assert any("registered" in text for text in texts)
        assert any("connected" in text for text in texts)
    # Nothing printed where logging is not configured, and the level is given back.
    assert "scheduler: listening" not in capsys.readouterr().err
    assert logging.getLogger("trident.scheduler").level == level_before


# --- actors ------------------------------------------------------------------------------


class Counter:
    kind = "counter"

    def __init__(self):
        self.n = 0

    def increment(self) -> int:
        self.n += 1
        return self.n

    @property
    def doubled(self) -> int:
        return 2 * self.n


def read_actor_names(counter) -> list[str]:
    return dir(counter)


def test_dir_of_an_actor_lists_its_attributes_and_its_methods(trident_blocking_client):
    client = trident_blocking_client
    counter = client.submit(Counter, actor=True).result(timeout=10)
    names = dir(counter)
    assert {"increment", "kind", "doubled"} <= set(names)
    assert counter.kind == "counter"
    # A handle that travelled to a task knows the instance's own attributes too.
    remote = client.submit(read_actor_names, counter).result(timeout=10)
    assert {"increment", "kind", "doubled", "n"} <= set(remote)


# --- cancelling and restarting forget keys -------------------------------------------------


def wait_for(predicate, timeout: float = 10.0) -> None:
    """Poll `predicate` from blocking code until it is true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_cancelling_a_finished_future_forgets_its_key(trident_blocking_client):
    client = trident_blocking_client
    future = client.submit(inc, 10)
    assert future.result(timeout=10) == 11
    key = future.key
    assert key in client.who_has()
    future.cancel()
    assert future.cancelled()
    wait_for(lambda: key not in client.who_has())
    assert all(key not in keys for keys in client.has_what().values())
    again = client.submit(inc, 10)
    assert again.key == key
    assert again.result(timeout=10) == 11


def test_restart_forgets_every_key(trident_blocking_client):
    client = trident_blocking_client
    futures = client.map(inc, range(5))
    client.gather(futures)
    assert set(client.who_has()) >= {f.key for f in futures}
    client.restart()
    assert client.who_has() == {}
    assert all(f.cancelled() for f in futures)
    assert client.gather(client.map(inc, range(5))) == list(range(1, 6))


# --- host restrictions -------------------------------------------------------------------


def where_am_i(x: int) -> int:
    return x


def test_a_host_restriction_matches_every_worker_on_that_host():
    """Worker processes listen on 127.0.0.1: naming the IP, or ``localhost``, restricts
    a task to any of them, as dask's host restrictions do."""
    import socket

    from trident import LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert all(a.startswith("tcp://127.0.0.1:") for a in client.nthreads())
        futures = client.map(where_am_i, range(8), workers="127.0.0.1")
        assert client.gather(futures, asynchronous=False) == list(range(8))
        assert client.submit(where_am_i, 1, workers=["localhost"]).result(timeout=20) == 1
        hostname = socket.gethostname()
        if "127.0.0.1" in {info[4][0] for info in socket.getaddrinfo(hostname, None)}:
            assert client.submit(where_am_i, 2, workers=hostname).result(timeout=20) == 2


async def test_a_task_no_worker_can_run_is_reported_and_shown_on_the_dashboard(caplog):
    import json
    import logging

    from trident.testing import in_process_cluster

    from ..dashboard.httpclient import fetch

    with trio.fail_after(20):
        async with (
            in_process_cluster(token=None, dashboard_address=0) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            caplog.set_level(logging.WARNING, logger="trident.client")
            future = client.submit(inc, 1, workers="10.9.8.7")
            summary_url = f"http://{cluster.scheduler.dashboard_address}/api/summary.json"
            while "10.9.8.7" not in caplog.text:
                await trio.sleep(0.01)
            assert future.key in caplog.text
            assert "no connected worker" in caplog.text
            summary = json.loads((await fetch(summary_url)).body)
            assert summary["tasks"]["no-worker"] == 1
            assert future.status == "pending"
            # Allowed elsewhere, it runs where it can.
            loose = client.submit(inc, 2, workers="10.9.8.7", allow_other_workers=True)
            assert await loose == 3


# --- keys keep their type ----------------------------------------------------------------


def test_futures_of_a_persisted_collection_have_its_keys(trident_blocking_client):
    import dask.array as da
    from dask.core import flatten

    from trident import futures_of

    x = da.ones((6, 6), chunks=(3, 3)) + 1
    persisted = x.persist()
    keys = {f.key for f in futures_of(persisted)}
    assert keys == set(flatten(x.__dask_keys__()))
    assert all(type(key) is tuple for key in keys)
    assert persisted.sum().compute() == 72
    assert set(trident_blocking_client.who_has(futures_of(persisted))) == keys


@pytest.mark.parametrize(
    "key", ["plain", "3", "(not a tuple)", ("x-abc", 0, 1), ("x", (1, b"z")), 7, 2.5, b"raw", -1]
)
def test_keys_keep_their_type(trident_blocking_client, key):
    from trident import Future

    client = trident_blocking_client
    future = client.submit(inc, 1, key=key)
    assert future.key == key
    assert type(future.key) is type(key)
    assert future.result(timeout=10) == 2
    assert client.who_has([future]) == {key: client.who_has([future])[key]}
    assert Future(key, client).result(timeout=10) == 2
    [mapped] = client.map(inc, [5], key=[key])
    assert mapped.key == key
    scattered = client.scatter({key: 10})
    assert list(scattered) == [key]
    assert scattered[key].key == key


def test_a_key_of_another_type_is_refused(trident_blocking_client):
    with pytest.raises(TypeError, match="keys are str, bytes, int"):
        trident_blocking_client.submit(inc, 1, key=["a", "list"])


# --- progress of a collection ------------------------------------------------------------


def test_progress_of_a_collection_counts_every_task_of_its_graph(trident_blocking_client):
    import io

    import dask
    import dask.array as da

    from trident import futures_of, progress

    x = (da.ones((8, 8), chunks=(2, 2)) + 1).sum(axis=0)
    tasks = len(dask.optimize(x)[0].__dask_graph__())  # what persist sends
    persisted = x.persist()
    outputs = len(futures_of(persisted))
    assert tasks > outputs
    out = io.StringIO()
    progress(persisted, file=out, multi=False)
    assert f"| 100% Completed | {tasks} / {tasks}" in out.getvalue()


async def test_async_progress_of_a_collection_counts_every_task(trident_client):
    import dask
    import dask.array as da

    from trident import progress

    with trio.fail_after(30), dask.config.set(scheduler=trident_client):
        x = (da.ones((6, 6), chunks=(2, 2)) * 2).sum(axis=1)
        tasks = len(dask.optimize(x)[0].__dask_graph__())
        persisted = trident_client.persist(x)
        updates = [update async for update in progress(persisted)]
        assert updates[-1].complete
        assert updates[-1].total == tasks
