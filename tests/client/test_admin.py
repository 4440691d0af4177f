"""Cluster information and administration through the asynchronous client, on an
in-process cluster: where data lives, what workers do, functions run outside the task
system, copies, moves, retirements and uploaded files."""

from __future__ import annotations

import sys
import threading
import time

import pytest
import trio

import trident
from trident import Client, SchedulerError
from trident.testing import in_process_cluster

from ..polling import DEADLINE

BLOCKERS: dict[str, threading.Event] = {}


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


def inc(x):
    return x + 1


def blocked_on(name: str) -> str:
    """A sync task that runs until the test releases `name` (in-process workers only)."""
    BLOCKERS.setdefault(name, threading.Event()).wait(10)
    return name


def spin(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return n


class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


@pytest.fixture
def release():
    yield lambda name: BLOCKERS.setdefault(name, threading.Event()).set()
    for event in BLOCKERS.values():
        event.set()
    BLOCKERS.clear()


async def wait_running(client, n):
    with trio.fail_after(DEADLINE):
        while sum(len(keys) for keys in (await client.processing()).values()) < n:
            await trio.sleep(0.01)


# --- where data lives ---------------------------------------------------------------------


async def test_has_what_nbytes_and_processing(trident_client, release):
    futures = trident_client.map(inc, range(6))
    await trident_client.gather(futures)
    has_what = await trident_client.has_what()
    assert sorted(key for keys in has_what.values() for key in keys) == sorted(
        f.key for f in futures
    )
    (address,) = list(has_what)[:1]
    assert list(await trident_client.has_what(workers=[address])) == [address]
    sizes = await trident_client.nbytes(summary=False)
    assert set(sizes) == {f.key for f in futures}
    assert all(n > 0 for n in sizes.values())
    assert await trident_client.nbytes() == {"inc": sum(sizes.values())}
    assert list(await trident_client.nbytes(futures[:2], summary=False)) == [
        f.key for f in futures[:2]
    ]
    running = trident_client.submit(blocked_on, "processing")
    await wait_running(trident_client, 1)
    processing = await trident_client.processing()
    assert [running.key] in processing.values()
    release("processing")
    await running


async def test_stacks_lists_tasks_waiting_for_a_thread(trident_client, release):
    (address, *_) = trident_client.nthreads()
    first = trident_client.submit(blocked_on, "queue", workers=[address])
    queued = [trident_client.submit(inc, i, workers=[address]) for i in range(3)]
    await wait_running(trident_client, 4)
    with trio.fail_after(DEADLINE):
        while not (await trident_client.stacks(workers=[address]))[address]:
            await trio.sleep(0.01)
    assert (await trident_client.stacks())[address] == [f.key for f in queued]
    release("queue")
    await trident_client.gather([first, *queued])
    assert (await trident_client.stacks())[address] == []


async def test_call_stack_shows_where_running_tasks_are(trident_client, release):
    running = trident_client.submit(blocked_on, "stack")
    other = trident_client.submit(blocked_on, "other-stack")
    await wait_running(trident_client, 2)
    with trio.fail_after(DEADLINE):
        while len(stacks := await trident_client.call_stack()) < 2:
            await trio.sleep(0.01)
    (found,) = [s for s in stacks.values() if running.key in s]
    frames = found[running.key]
    assert "in blocked_on" in frames[0]
    assert __file__ in frames[0]
    assert "wait" in frames[-1]
    only = await trident_client.call_stack([running])
    assert [list(s) for s in only.values()] == [[running.key]]
    (by_key,) = (await trident_client.call_stack(keys=[other.key])).values()
    assert list(by_key) == [other.key]
    release("stack")
    release("other-stack")
    await trident_client.gather([running, other])
    assert await trident_client.call_stack() == {}


async def test_profile_counts_sampled_stacks_per_function(trident_client):
    started = time.time()
    await trident_client.gather(trident_client.map(spin, [0.3, 0.3], pure=False))
    tree = await trident_client.profile(key="spin")
    assert tree["count"] >= 10  # two workers, ~30 samples each at 10 ms (fewer on a busy machine)
    (node,) = tree["children"].values()
    assert node["description"]["name"] == "spin"
    assert node["count"] == tree["count"]
    assert node["identifier"].startswith("spin;" + __file__)
    per_worker = await trident_client.profile(merge_workers=False, start=started)
    assert len(per_worker) == 2
    assert all(t["count"] > 0 for t in per_worker.values())
    assert (await trident_client.profile(key="inc"))["count"] == 0
    assert (await trident_client.profile(start=time.time() + 60))["count"] == 0


async def test_get_versions_reports_every_process(trident_client, monkeypatch):
    versions = await trident_client.get_versions(check=True, packages=["pytest"])
    assert versions["client"]["packages"]["trident"] == trident.__version__
    assert versions["scheduler"]["packages"]["pytest"]
    assert len(versions["workers"]) == 2
    import trident.client.admin as admin

    real = admin.local_versions

    def older_trident(packages=()):
        found = real(packages)
        found["packages"]["trident"] = "0.0.1"
        return found

    monkeypatch.setattr(admin, "local_versions", older_trident)
    with pytest.raises(ValueError, match=r"(?s)trident:.*client\s+0\.0\.1"):
        await trident_client.get_versions(check=True)
    await trident_client.get_versions()  # no check, no error


# --- running functions outside the task system -----------------------------------------


def where(dask_worker):
    return dask_worker.address


def where_trident(x, trident_worker, y=0):
    return (trident_worker.name, x + y)


async def nap_then(value, seconds=0.01):
    await trio.sleep(seconds)
    return value


finished_naps: list[str] = []


async def nap_in_background(tag):
    await trio.sleep(0.05)
    finished_naps.append(tag)


def fail_on(address, dask_worker):
    if dask_worker.address == address:
        raise KeyError("unlucky")
    return "fine"


async def test_run_calls_a_function_on_each_worker(trident_client):
    addresses = sorted(trident_client.nthreads())
    assert await trident_client.run(where) == {a: a for a in addresses}
    names = await trident_client.run(where_trident, 1, y=2, workers=[addresses[0]])
    assert list(names) == [addresses[0]]
    assert names[addresses[0]][1] == 3
    assert await trident_client.run(nap_then, "napped") == dict.fromkeys(addresses, "napped")
    assert await trident_client.run(nap_in_background, "bg", wait=False) is None
    with trio.fail_after(5):
        while len(finished_naps) < 2:
            await trio.sleep(0.01)


async def test_run_on_error_raises_returns_or_ignores(trident_client):
    bad, good = sorted(trident_client.nthreads())
    with pytest.raises(KeyError, match="unlucky") as info:
        await trident_client.run(fail_on, bad)
    assert any(bad in note for note in info.value.__notes__)
    returned = await trident_client.run(fail_on, bad, on_error="return")
    assert isinstance(returned[bad], KeyError)
    assert returned[good] == "fine"
    assert await trident_client.run(fail_on, bad, on_error="ignore") == {good: "fine"}
    with pytest.raises(ValueError, match="on_error"):
        trident_client.run(where, on_error="explode")
    with pytest.raises(ValueError, match="has no nanny"):
        await trident_client.run(where, nanny=True)


def scheduler_facts(dask_scheduler, extra=0):
    return len(dask_scheduler.state.workers) + extra


async def scheduler_nap(trident_scheduler):
    await trio.sleep(0.01)
    return trident_scheduler.id


def scheduler_fails():
    raise RuntimeError("scheduler says no")


async def test_run_on_scheduler(trident_client, trident_cluster):
    assert await trident_client.run_on_scheduler(scheduler_facts, extra=10) == 12
    assert await trident_client.run_on_scheduler(scheduler_nap) == trident_cluster.scheduler.id
    assert await trident_client.run_on_scheduler(len, [1, 2, 3]) == 3
    with pytest.raises(RuntimeError, match="scheduler says no") as info:
        await trident_client.run_on_scheduler(scheduler_fails)
    assert "the scheduler" in info.value.__notes__[-1]


# --- copies, moves, retirement ------------------------------------------------------------


@pytest.fixture
async def three_workers():
    async with (
        in_process_cluster(n_workers=3, threads_per_worker=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        yield client


async def test_replicate_and_rebalance(three_workers):
    client = three_workers
    first = sorted(client.nthreads())[0]
    data = [client.submit(bytes, 1000, pure=False, workers=[first]) for _ in range(6)]
    await client.gather(data)
    await client.replicate(data[:2])
    who_has = await client.who_has(data[:2])
    assert all(len(holders) == 3 for holders in who_has.values())
    await client.replicate(data[:2], n=2)
    assert all(len(h) == 2 for h in (await client.who_has(data[:2])).values())
    await client.replicate(data[2], n=1)
    await client.rebalance(data[2:])
    has_what = await client.has_what()
    loads = sorted(len(set(keys) & {f.key for f in data[2:]}) for keys in has_what.values())
    assert loads == [1, 1, 2]
    assert await client.gather(data) == [bytes(1000)] * 6


async def test_retiring_workers_keeps_their_data(three_workers, trident_cluster_options):
    client = three_workers
    data = client.map(inc, range(12))
    await client.gather(data)
    leaving = sorted(client.nthreads())[:2]
    retired = await client.retire_workers(leaving)
    assert sorted(retired) == leaving
    assert retired[leaving[0]]["nthreads"] == 1
    with trio.fail_after(5):
        while len(client.nthreads()) > 1:
            await trio.sleep(0.01)
    (staying,) = client.nthreads()
    assert sorted((await client.has_what())[staying]) == sorted(f.key for f in data)
    assert await client.gather(data) == list(range(1, 13))
    with trio.fail_after(5):  # the retired in-process workers stop
        while len(client.cluster.workers) > 1:
            await trio.sleep(0.01)


async def actor_home(client, actor):
    (home,) = (await client.who_has([actor._future]))[actor.key]
    return home


async def test_retire_without_names_spares_idle_workers_and_actors_restart(three_workers):
    client = three_workers
    counter = client.actor(Counter, max_restarts=1)
    assert await counter.incr() == 1
    home = await actor_home(client, counter)
    keep = await client.scatter(list(range(5)), broadcast=True)
    retired = await client.retire_workers([home])
    assert list(retired) == [home]
    assert await counter.incr() == 1  # rebuilt elsewhere, as after losing its worker
    new_home = await actor_home(client, counter)
    assert new_home != home
    retired = await client.retire_workers()
    assert len(retired) == 1
    assert new_home not in retired
    assert await client.gather(keep) == list(range(5))


# --- uploaded files ----------------------------------------------------------------------


def import_and_call(module_name):
    import importlib

    return importlib.import_module(module_name).value()


async def test_upload_file_makes_a_module_importable_in_tasks(
    trident_client, tmp_path, monkeypatch
):
    module = "trident_uploaded_async_mod"
    monkeypatch.delitem(sys.modules, module, raising=False)
    path = tmp_path / f"{module}.py"
    path.write_text("def value():\n    return 1\n")
    await trident_client.upload_file(str(path))
    assert await trident_client.submit(import_and_call, module, pure=False) == 1
    path.write_text("def value():\n    return 2\n")
    await trident_client.upload_file(str(path))
    assert await trident_client.submit(import_and_call, module, pure=False) == 2
    broken = tmp_path / "trident_uploaded_broken.py"
    broken.write_text("def broken(:\n")
    with pytest.raises(SchedulerError, match="SyntaxError"):
        await trident_client.upload_file(str(broken))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(SchedulerError, match=r"only \.py"):
        await trident_client.upload_file(str(text))
