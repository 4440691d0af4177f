"""Every public `Client` method in asynchronous mode, under trio and under asyncio.

As in dask, a method that asks the cluster returns an awaitable when the client is
asynchronous. The list of methods comes from `Client` itself, so a new method must be
added to one of the tables here (with the arguments it needs) before the suite passes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from trident import Client, Future, LocalCluster, SchedulerPlugin, WorkerPlugin


def inc(x: int) -> int:
    return x + 1


def fail() -> None:
    raise ValueError("expected")


def pid() -> int:
    import os

    return os.getpid()


async def apid() -> int:
    import os

    return os.getpid()


class Marker(WorkerPlugin):
    """A worker plugin that marks each worker it reaches."""

    name = "async-methods-marker"

    def setup(self, worker: Any) -> None:
        worker.async_methods_marker = True


class Watcher(SchedulerPlugin):
    name = "async-methods-watcher"


def note_worker(dask_worker: Any) -> None:
    dask_worker.async_methods_callback = True


class Tally:
    def __init__(self) -> None:
        self.n = 0


class Context:
    """What the argument builders may use: the client, a finished future, a failed one
    and a scratch directory."""

    def __init__(self, client: Client, done: Future, failed: Future, tmp: Path):
        self.client = client
        self.done = done
        self.failed = failed
        self.tmp = tmp


Arguments = Callable[[Context], tuple[tuple[Any, ...], dict[str, Any]]]


def call(*args: Any, **kwargs: Any) -> Arguments:
    return lambda ctx: (args, kwargs)


def delayed_inc() -> Any:
    import dask

    return dask.delayed(inc)(1)


def _module_file(ctx: Context) -> tuple[tuple[Any, ...], dict[str, Any]]:
    path = ctx.tmp / "uploaded_in_async_test.py"
    path.write_text("VALUE = 1\n")
    return (str(path),), {}


#: Methods that ask the cluster: they return an awaitable, awaited here.
AWAITED: dict[str, Arguments] = {
    "call_stack": call(),
    "cancel": lambda ctx: ((ctx.client.submit(inc, 100, pure=False),), {}),
    "compute": lambda ctx: ((delayed_inc(),), {"sync": True}),
    "dump_cluster_state": lambda ctx: ((str(ctx.tmp / "dump"),), {}),
    "forward_logging": call(),
    "gather": lambda ctx: ((ctx.done,), {}),
    "get": call({"x": (inc, 1)}, "x"),
    "get_dataset": call("dataset", default=None),
    "get_events": call("async-methods"),
    "get_futures_error": lambda ctx: ((ctx.failed,), {}),
    "get_metadata": call("meta", default=None),
    "get_scheduler_logs": call(),
    "get_task_stream": call(),
    "get_versions": call(),
    "get_worker_logs": call(),
    "has_what": call(),
    "list_datasets": call(),
    "log_event": call("async-methods", {"n": 1}),
    "nbytes": call(),
    "ncores": call(),
    "nthreads": call(),
    "processing": call(),
    "profile": call(),
    "publish_dataset": call(published=1),
    "rebalance": call(),
    "retire_workers": call(workers=[]),
    "recreate_error_locally": lambda ctx: ((ctx.failed,), {}),
    "register_plugin": call(Marker()),
    "register_worker_plugin": call(Marker(), name="async-methods-marker-2"),
    "register_scheduler_plugin": call(Watcher()),
    "register_worker_callbacks": call(note_worker),
    "unregister_worker_plugin": call("async-methods-marker-2"),
    "unregister_scheduler_plugin": call("async-methods-watcher"),
    "story": lambda ctx: ((ctx.done,), {}),
    "replicate": lambda ctx: ((ctx.done,), {}),
    # no such worker: with raise_for_error=False the error is the answer
    "restart_workers": call(["no-such-worker"], raise_for_error=False),
    "retry": lambda ctx: ((ctx.failed,), {}),
    "run": call(pid),
    "run_coroutine": call(apid),
    "run_on_scheduler": call(pid),
    "scatter": call([1, 2]),
    "scheduler_info": call(),
    "set_metadata": call("meta", 1),
    "stacks": call(),
    "unforward_logging": call(),
    "unpublish_dataset": call("published"),
    "upload_file": _module_file,
    "wait_for_workers": call(1),
    "who_has": call(),
    # Last: these end the client's session or the cluster's data.
    "restart": call(),
    "close": call(),
    "shutdown": call(),
}

#: Methods that ask the cluster but start kernels: checked to return an awaitable (the
#: kernels themselves are tested in test_ipython.py).
AWAITABLE_NOT_AWAITED: dict[str, Arguments] = {
    "start_ipython_scheduler": call(magic_name=None),
    "start_ipython_workers": call(magic_names=None),
}

#: Methods that return at once in dask too (futures, handles, local objects).
IMMEDIATE: dict[str, Arguments] = {
    "actor": call(Tally),
    "as_current": call(),
    "current": call(),
    "get_executor": call(),
    "get_restrictions": call([], None, False),
    "map": call(inc, [1, 2]),
    "normalize_collection": lambda ctx: ((delayed_inc(),), {}),
    "persist": lambda ctx: ((delayed_inc(),), {}),
    "submit": call(inc, 1),
    "subscribe_topic": call("async-methods", print),
    "sync": call(pid),
    "task_group": call(),
    "unsubscribe_topic": call("async-methods"),
    "write_scheduler_file": lambda ctx: ((str(ctx.tmp / "scheduler.json"),), {}),
}


#: Methods that may raise where the exercise runs (`current` without a default client:
#: the exercised client is not the default).
MAY_RAISE: dict[str, type[Exception]] = {"current": ValueError}


def public_methods() -> set[str]:
    return {
        name
        for name in dir(Client)
        if not name.startswith("_")
        and not isinstance(inspect.getattr_static(Client, name), property)
        and callable(getattr(Client, name))
    }


def test_every_public_method_is_in_a_table():
    tables = [AWAITED, AWAITABLE_NOT_AWAITED, IMMEDIATE]
    classified = set().union(*tables)
    assert public_methods() - classified == set(), "add new Client methods to a table"
    assert classified - public_methods() == set()
    assert sum(map(len, tables)) == len(classified)  # no method in two tables


async def exercise_every_method(cluster: LocalCluster, tmp: Path) -> list[str]:
    """Call every method on an asynchronous client; return the methods that broke the
    contract (an awaitable where dask returns at once, or the other way round)."""
    wrong = []
    async with Client(cluster, asynchronous=True, set_as_default=False) as client:
        done = client.submit(inc, 1)
        failed = client.submit(fail)
        await client.gather([done, failed], errors="skip")
        ctx = Context(client, done, failed, tmp)
        for name, build in IMMEDIATE.items():
            args, kwargs = build(ctx)
            try:
                result = getattr(client, name)(*args, **kwargs)
            except MAY_RAISE.get(name, ()):
                continue
            # (futures and dask collections are awaitable themselves: not a coroutine)
            if inspect.iscoroutine(result):
                result.close()
                wrong.append(f"{name} returned a coroutine")
        for name, build in AWAITABLE_NOT_AWAITED.items():
            args, kwargs = build(ctx)
            result = getattr(client, name)(*args, **kwargs)
            if not inspect.isawaitable(result):
                wrong.append(f"{name} returned {type(result).__name__}, not an awaitable")
            elif inspect.iscoroutine(result):
                result.close()
        for name, build in AWAITED.items():
            args, kwargs = build(ctx)
            result = getattr(client, name)(*args, **kwargs)
            if not inspect.isawaitable(result):
                wrong.append(f"{name} returned {type(result).__name__}, not an awaitable")
                continue
            if name == "recreate_error_locally":
                with pytest.raises(ValueError, match="expected"):
                    await result
            else:
                await result
    return wrong


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def no_leaked_processes_or_threads():
    """The module-scoped cluster owns threads across tests."""
    return


async def test_every_method_under_trio(cluster, tmp_path):
    with trio.fail_after(60):
        assert await exercise_every_method(cluster, tmp_path) == []


def test_every_method_under_asyncio(cluster, tmp_path):
    async def main() -> list[str]:
        return await asyncio.wait_for(exercise_every_method(cluster, tmp_path), 60)

    assert asyncio.run(main()) == []
