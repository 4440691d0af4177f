"""Errors you can debug: unpicklable arguments and results named with their path, real
tracebacks, `get_futures_error` and `recreate_error_locally`."""

from __future__ import annotations

import pickle
import threading
import traceback
import types

import pytest
import trio
import trio.lowlevel

from trident import SchedulerError, SerializationError
from trident.protocol import messages as m


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


def inc(x: int) -> int:
    return x + 1


def identity(x: object) -> object:
    return x


def returns_a_lock() -> dict:
    return {"conn": threading.Lock()}


def divide(x: int, y: int, *, offset: int = 0) -> float:
    return x / y + offset


async def async_divide(x: int, y: int) -> float:
    await trio.lowlevel.checkpoint()
    return x / y


class Guarded:
    """An actor whose instance holds a lock: it stays on its worker, so that is fine."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def ping(self) -> str:
        return "pong"


def closure_over_a_lock():
    lock = threading.Lock()

    def uses_lock() -> bool:
        return lock.locked()

    return uses_lock


# --- unpicklable arguments and results ----------------------------------------------


async def test_unpicklable_arguments_are_reported_at_submit(trident_client):
    client = trident_client
    with pytest.raises(SerializationError) as info:
        client.submit(identity, {"conn": threading.Lock()}, key="my-key")
    error = info.value
    assert error.path == "args[0]['conn']"
    assert error.type_name == "_thread.lock"
    assert "task 'my-key'" in str(error)
    assert "args[0]['conn'] -> _thread.lock" in str(error)
    assert isinstance(error, TypeError)
    assert isinstance(error, pickle.PicklingError)
    with pytest.raises(SerializationError, match=r"kwargs\['offset'\] -> _thread.lock"):
        client.submit(divide, 1, 2, offset=threading.Lock())
    with pytest.raises(SerializationError, match=r"a task of 'identity'.*args\[0\]\[2\]"):
        client.map(identity, [[1, 2, threading.Lock()]])
    with pytest.raises(SerializationError, match=r"function.<closure lock> -> _thread.lock"):
        client.submit(closure_over_a_lock())
    assert await client.submit(inc, 1) == 2  # the client is fine afterwards


async def test_unpicklable_results_fail_their_task_at_once(trident_client):
    client = trident_client
    wanted = client.submit(returns_a_lock, pure=False)
    with pytest.raises(SerializationError, match=r"result\['conn'\] -> _thread.lock") as info:
        await wanted
    assert wanted.key in str(info.value)
    # An intermediate result nobody fetches yet is checked too: its dependent fails
    # with the same error instead of waiting for data that can never move.
    dependent = client.submit(identity, client.submit(returns_a_lock, pure=False))
    with pytest.raises(SerializationError, match=r"_thread\.lock"):
        await dependent


async def test_actor_instances_are_not_results_to_pickle(trident_client):
    guarded = trident_client.actor(Guarded)
    assert await guarded.ping() == "pong"


# --- tracebacks and replay ------------------------------------------------------------


async def test_traceback_is_a_real_traceback_object(trident_client):
    future = trident_client.submit(divide, 1, 0)
    tb = await future.traceback()
    assert isinstance(tb, types.TracebackType)
    assert any("divide" in line for line in traceback.format_tb(tb))
    with pytest.raises(ZeroDivisionError) as info:
        await future
    assert any(frame.name == "divide" for frame in traceback.extract_tb(info.value.__traceback__))


async def test_get_futures_error_follows_the_error_to_its_task(trident_client):
    client = trident_client
    x = client.submit(inc, 1)
    failing = client.submit(divide, x, 0, offset=3)
    last = client.submit(inc, failing)
    with pytest.raises(ZeroDivisionError):
        await last
    function, args, kwargs, deps = await client.get_futures_error(last)
    assert function is divide
    assert args == (x.key, 0)
    assert kwargs == {"offset": 3}
    assert deps == [x.key]
    with pytest.raises(ValueError, match="No errored futures"):
        await client.get_futures_error(x)


async def test_recreate_error_locally_raises_here_with_the_same_inputs(trident_client):
    client = trident_client
    x = client.submit(inc, 1)
    last = client.submit(inc, client.submit(divide, x, 0))
    with pytest.raises(ZeroDivisionError):
        await last
    del x  # the input's data may be released: it is recomputed for the replay
    with pytest.raises(ZeroDivisionError) as info:
        await client.recreate_error_locally(last)
    assert not getattr(info.value, "__notes__", None)  # raised here, not on a worker
    assert traceback.extract_tb(info.value.__traceback__)[-1].name == "divide"
    failing = client.submit(async_divide, 1, 0)
    with pytest.raises(ZeroDivisionError):
        await client.recreate_error_locally([failing, client.submit(inc, 1)])


async def test_only_failed_keys_have_an_error_cause(trident_client):
    client = trident_client
    future = client.submit(inc, 1)
    await future
    with pytest.raises(SchedulerError, match="did not fail"):
        await client._core.request(lambda rid: m.ErrorCause(rid, future.key))
