"""Worker, scheduler and nanny plugins, `Client.story` and `Client.as_current` on real
clusters, through the asynchronous client under trio: in-process, and with worker
processes under nannies (tests/test_plugins_blocking.py: the blocking client, and the
asynchronous one under asyncio)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
import trio.lowlevel

import trident
from trident import (
    Client,
    LocalCluster,
    NannyPlugin,
    SchedulerPlugin,
    UploadFile,
    WorkerPlugin,
)
from trident.testing import in_process_cluster

#: what plugins did in in-process workers, in order: (event, worker address, detail)
EVENTS: list[tuple[str, str, Any]] = []


@pytest.fixture(autouse=True)
def clear_events():
    EVENTS.clear()
    yield
    EVENTS.clear()


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(60):
        yield


def inc(x: int) -> int:
    return x + 1


def fail() -> None:
    raise ValueError("task failed on purpose")


class Recorder(WorkerPlugin):
    """Notes its hooks in `EVENTS` (in-process workers) and on the worker itself."""

    name = "recorder"

    def __init__(self, tag: str = "first"):
        self.tag = tag

    def setup(self, worker: Any) -> None:
        self.worker = worker
        worker.recorder_tag = self.tag
        worker.recorder_transitions = []
        EVENTS.append(("setup", worker.address, self.tag))

    def teardown(self, worker: Any) -> None:
        worker.recorder_tag = None
        EVENTS.append(("teardown", worker.address, self.tag))

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        self.worker.recorder_transitions.append((key, start, finish))


class AsyncRecorder(WorkerPlugin):
    name = "async-recorder"

    async def setup(self, worker: Any) -> None:
        await trio.sleep(0.01)
        EVENTS.append(("async-setup", worker.address, None))

    async def teardown(self, worker: Any) -> None:
        await trio.sleep(0.01)
        EVENTS.append(("async-teardown", worker.address, None))


class Exploding(WorkerPlugin):
    name = "exploding"

    def setup(self, worker: Any) -> None:
        raise ZeroDivisionError("setup failed on purpose")


class Watcher(SchedulerPlugin):
    """Notes what the scheduler tells it."""

    name = "watcher"

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    async def start(self, scheduler: Any) -> None:
        self.events.append(("start", scheduler.address))

    async def close(self) -> None:
        EVENTS.append(("close", "scheduler", self.name))

    def add_worker(self, scheduler: Any, worker: str) -> None:
        self.events.append(("add_worker", worker))

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self.events.append(("remove_worker", worker))

    def add_client(self, scheduler: Any, client: str) -> None:
        self.events.append(("add_client", client))

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.events.append(("remove_client", client))

    def update_graph(self, scheduler: Any, *, client: str, keys: set[Any], **kwargs: Any) -> None:
        self.events.append(("update_graph", client, sorted(map(str, keys))))

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        self.events.append(("transition", key, start, finish))


class FailingStart(SchedulerPlugin):
    name = "failing-start"

    async def start(self, scheduler: Any) -> None:
        raise KeyError("start failed on purpose")


def plugin_names(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.plugins)


def watcher_events(dask_scheduler: Any, name: str = "watcher") -> list[tuple[Any, ...]]:
    return list(dask_scheduler.plugins[name].events)


def recorder_state(dask_worker: Any) -> tuple[Any, list[tuple[Any, str, str]]]:
    return getattr(dask_worker, "recorder_tag", None), getattr(
        dask_worker, "recorder_transitions", []
    )


async def run_on_each(client: Client) -> None:
    """Run a task on every worker (tasks reach a worker after its plugins)."""
    futures = [client.submit(inc, 0, workers=[a], pure=False) for a in client.nthreads()]
    await client.gather(futures)


def set_ups(tag: str = "first") -> set[str]:
    return {address for event, address, detail in EVENTS if event == "setup" and detail == tag}


# --- worker plugins ----------------------------------------------------------------------


async def test_worker_plugin_runs_on_every_worker_and_on_workers_that_join_later():
    async with (
        in_process_cluster(n_workers=2) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        result = await client.register_plugin(Recorder())
        workers = set(client.nthreads())
        assert result == {address: {"status": "OK"} for address in workers}
        assert set_ups() == workers
        await cluster.scale(3)
        await client.wait_for_workers(3)
        await run_on_each(client)  # a worker sets its plugins up before any task
        assert set_ups() == set(client.nthreads())
        states = await client.run(recorder_state)
        assert {tag for tag, _ in states.values()} == {"first"}


async def test_transition_sees_tasks_finish_and_fail(trident_client):
    client = trident_client
    await client.register_plugin(Recorder())
    good = client.submit(inc, 1, key="good")
    bad = client.submit(fail, key=("bad", 0))
    assert await good == 2
    with pytest.raises(ValueError, match="on purpose"):
        await bad
    transitions = [t for _, ts in (await client.run(recorder_state)).values() for t in ts]
    assert ("good", "ready", "executing") in transitions
    assert ("good", "executing", "memory") in transitions
    assert (("bad", 0), "executing", "error") in transitions  # tuple keys come back whole


async def test_setup_that_raises_surfaces_to_the_caller(trident_client):
    with pytest.raises(ZeroDivisionError, match="setup failed on purpose") as caught:
        await trident_client.register_plugin(Exploding())
    assert any("exploding" in note for note in caught.value.__notes__)


async def test_same_name_replaces_after_teardown_and_idempotent_does_nothing(trident_client):
    client = trident_client
    await client.register_plugin(Recorder("first"))
    workers = set(client.nthreads())
    await client.register_plugin(Recorder("second"))
    for address in workers:
        mine = [(event, detail) for event, where, detail in EVENTS if where == address]
        assert mine == [("setup", "first"), ("teardown", "first"), ("setup", "second")]
    assert await client.register_plugin(Recorder("third"), idempotent=True) == {}
    assert set_ups("third") == set()
    idempotent = Recorder("fourth")
    idempotent.idempotent = True
    assert await client.register_plugin(idempotent) == {}
    assert {tag for tag, _ in (await client.run(recorder_state)).values()} == {"second"}


async def test_unregister_tears_down_and_unknown_names_raise(trident_client):
    client = trident_client
    await client.register_plugin(AsyncRecorder())
    workers = set(client.nthreads())
    assert {a for e, a, _ in EVENTS if e == "async-setup"} == workers
    result = await client.unregister_worker_plugin("async-recorder")
    assert result == {address: {"status": "OK"} for address in workers}
    assert {a for e, a, _ in EVENTS if e == "async-teardown"} == workers
    with pytest.raises(ValueError, match="does not exist"):
        await client.unregister_worker_plugin("async-recorder")


async def test_teardown_runs_when_the_worker_closes():
    async with in_process_cluster(n_workers=2) as cluster:
        async with Client(cluster, asynchronous=True, set_as_default=False) as client:
            await client.register_plugin(Recorder())
            workers = set(client.nthreads())
        assert not [e for e in EVENTS if e[0] == "teardown"]
    assert {a for e, a, _ in EVENTS if e == "teardown"} == workers


async def test_register_worker_plugin_accepts_duck_typed_plugins_and_register_plugin_not(
    trident_client,
):
    with pytest.raises(TypeError, match=r"subclass trident\.WorkerPlugin"):
        trident_client.register_plugin(Duck())
    result = await trident_client.register_worker_plugin(Duck(), name="duck")
    assert set(result) == set_ups("duck") == set(trident_client.nthreads())


class Duck:
    """A plugin that subclasses nothing (dask's older API accepts these)."""

    def setup(self, worker: Any) -> None:
        EVENTS.append(("setup", worker.address, "duck"))


def callback_with_worker(dask_worker: Any) -> str:
    EVENTS.append(("callback", dask_worker.address, None))
    return dask_worker.address


def callback_without_arguments() -> None:
    EVENTS.append(("callback", "-", None))


async def async_callback(trident_worker: Any) -> None:
    await trio.lowlevel.checkpoint()
    EVENTS.append(("async-callback", trident_worker.address, None))


async def test_register_worker_callbacks(trident_client):
    client = trident_client
    result = await client.register_worker_callbacks(callback_with_worker)
    workers = set(client.nthreads())
    assert result == {address: {"status": "OK"} for address in workers}
    assert {a for e, a, _ in EVENTS if e == "callback"} == workers
    await client.register_worker_callbacks(setup=callback_without_arguments)
    assert [a for e, a, _ in EVENTS if e == "callback"].count("-") == len(workers)
    await client.register_worker_callbacks(async_callback)
    assert {a for e, a, _ in EVENTS if e == "async-callback"} == workers
    with pytest.raises(TypeError, match="needs a setup function"):
        client.register_worker_callbacks()


def import_and_read(module: str) -> str:
    import importlib

    return importlib.import_module(module).VALUE


async def test_upload_file_plugin_reaches_every_worker(tmp_path):
    path = tmp_path / "trident_plugin_uploaded.py"
    path.write_text("VALUE = 'uploaded'\n")
    plugin = UploadFile(path)
    assert plugin.name == "upload-file-trident_plugin_uploaded.py"
    async with (
        in_process_cluster(n_workers=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        await client.register_plugin(plugin)
        await cluster.scale(2)
        await client.wait_for_workers(2)
        for address in client.nthreads():
            future = client.submit(
                import_and_read, "trident_plugin_uploaded", workers=[address], pure=False
            )
            assert await future == "uploaded"


# --- scheduler plugins --------------------------------------------------------------------


async def test_scheduler_plugin_sees_workers_clients_graphs_and_transitions():
    async with (
        in_process_cluster(n_workers=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        assert await client.register_plugin(Watcher()) is None
        events = await client.run_on_scheduler(watcher_events)
        assert [e[0] for e in events] == ["start"]
        before = set(client.nthreads())
        await cluster.scale(2)
        await client.wait_for_workers(2)
        (newcomer,) = set(client.nthreads()) - before
        assert await client.submit(inc, 1, key="watched") == 2
        async with Client(cluster, asynchronous=True, set_as_default=False):
            pass
        await client.retire_workers([newcomer])
        events = await client.run_on_scheduler(watcher_events)
        assert [e for e in events if e[0] == "add_worker"] == [("add_worker", newcomer)]
        assert ("remove_worker", newcomer) in events
        assert [e[2] for e in events if e[0] == "update_graph"] == [["watched"]]
        assert ("transition", "watched", "processing", "memory") in events
        users = {
            kind: who
            for kind, who, *_ in events
            if kind in ("add_client", "remove_client") and not who.startswith("worker-client-")
        }
        assert users["add_client"] == users["remove_client"]  # the other client came and left
        await client.unregister_scheduler_plugin("watcher")
        assert EVENTS == [("close", "scheduler", "watcher")]
        assert await client.run_on_scheduler(plugin_names) == []


async def test_scheduler_plugin_start_errors_surface_and_idempotent(trident_client):
    client = trident_client
    with pytest.raises(KeyError, match="start failed on purpose"):
        await client.register_plugin(FailingStart())
    await client.register_scheduler_plugin(Watcher())
    await client.register_plugin(Watcher(), idempotent=True)  # no new start
    events = await client.run_on_scheduler(watcher_events)
    assert [e[0] for e in events] == ["start"]
    await client.register_plugin(Watcher())  # replaced: the old one is closed
    assert EVENTS.count(("close", "scheduler", "watcher")) == 1
    with pytest.raises(ValueError, match="does not exist"):
        await client.unregister_scheduler_plugin("no-such-plugin")


async def test_scheduler_plugins_close_when_the_scheduler_stops():
    async with in_process_cluster(n_workers=1) as cluster:
        async with Client(cluster, asynchronous=True, set_as_default=False) as client:
            await client.register_plugin(Watcher())
        assert EVENTS == []
    assert EVENTS == [("close", "scheduler", "watcher")]


# --- story and as_current -------------------------------------------------------------------


async def test_story_lists_the_scheduler_transitions_of_keys(trident_client):
    client = trident_client
    first = client.submit(inc, 1, key="story-a")
    second = client.submit(inc, first, key=("story", 1))
    await second
    story = await client.story(first, ("story", 1))
    assert [(k, s, f) for k, s, f, _, _ in story if k == "story-a"] == [
        ("story-a", "released", "waiting"),
        ("story-a", "waiting", "queued"),
        ("story-a", "queued", "processing"),
        ("story-a", "processing", "memory"),
    ]
    assert [(s, f) for k, s, f, _, _ in story if k == ("story", 1)][-1] == ("processing", "memory")
    times = [t for *_, t in story]
    assert times == sorted(times)
    assert await client.story("never-submitted") == []
    del first, second
    with trio.fail_after(10):
        while not any(f == "forgotten" for _, _, f, _, _ in await client.story("story-a")):
            await trio.sleep(0.01)


async def test_as_current_sets_the_default_client_inside_the_block(trident_cluster):
    async with (
        Client(trident_cluster, asynchronous=True, set_as_default=False) as first,
        Client(trident_cluster, asynchronous=True, set_as_default=False) as second,
    ):
        with first.as_current() as entered:
            assert entered is first
            assert trident.default_client() is first
            assert trident.get_client() is first
            with second.as_current():
                assert trident.get_client() is second
            assert trident.get_client() is first
        with pytest.raises(ValueError, match="no trident client"):
            trident.default_client()


# --- worker processes under nannies ----------------------------------------------------------


class NannyRecorder(NannyPlugin):
    name = "nanny-recorder"

    def setup(self, nanny: Any) -> None:
        nanny.recorded = "set up"

    def teardown(self, nanny: Any) -> None:
        nanny.recorded = "torn down"


def nanny_recorded(dask_worker: Any) -> Any:
    return getattr(dask_worker, "recorded", None), list(dask_worker.plugins)


def worker_pid(dask_worker: Any) -> int:
    return os.getpid()


async def test_plugins_with_worker_processes_and_nannies():
    async with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, asynchronous=True, dashboard_address=None
        ) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        assert os.getpid() not in (await client.run(worker_pid)).values()
        await client.register_plugin(Recorder())
        await client.register_plugin(NannyRecorder())
        await cluster.scale(2)
        await client.wait_for_workers(2)
        await run_on_each(client)  # a worker sets its plugins up before any task
        assert await client.submit(inc, 1, key="in-a-process") == 2
        states = await client.run(recorder_state)
        assert {tag for tag, _ in states.values()} == {"first"}  # the newcomer too
        transitions = [t for _, ts in states.values() for t in ts]
        assert ("in-a-process", "executing", "memory") in transitions
        with pytest.raises(ZeroDivisionError, match="on purpose"):
            await client.register_plugin(Exploding())
        expected = {a: ("set up", ["nanny-recorder"]) for a in client.nthreads()}
        # The nanny that joined later sets its plugin up as it connects, before its
        # worker process is up: it has long finished by now; poll briefly all the same.
        while (found := await client.run(nanny_recorded, nanny=True)) != expected:
            await trio.sleep(0.05)
        await client.unregister_worker_plugin("recorder")
        assert {tag for tag, _ in (await client.run(recorder_state)).values()} == {None}
        await client.unregister_worker_plugin("nanny-recorder", nanny=True)
        found = await client.run(nanny_recorded, nanny=True)
        assert all(v == ("torn down", []) for v in found.values())
