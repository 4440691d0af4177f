"""Public classes and functions report `trident` as their module (as trio's do), so
reprs, tracebacks and pickles name ``trident.KilledWorker``, and pickles made under
those names load back."""

from __future__ import annotations

import pickle
import pickletools

import pytest

import trident
from trident._exceptions import KilledWorker
from trident.protocol.failures import RemoteException


def _globals_named(data: bytes) -> list[tuple[str, str]]:
    """The (module, name) pairs a pickle looks up."""
    found, strings = [], []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            found.append((module, name))
        elif opcode.name == "STACK_GLOBAL":
            found.append((strings[-2], strings[-1]))
        elif isinstance(arg, str):
            strings.append(arg)
    return found


def _public_objects():
    for name in trident.__all__:
        value = getattr(trident, name)
        if getattr(value, "__module__", None) == "builtins":
            continue  # the builtin itself (TimeoutError, as dask exports it)
        if isinstance(value, type) or callable(value):
            yield name, value


def test_timeout_error_is_the_builtin_one():
    assert trident.TimeoutError is TimeoutError


@pytest.mark.parametrize(("name", "value"), list(_public_objects()))
def test_public_names_report_the_public_module(name, value):
    assert value.__module__ == "trident"
    assert value.__qualname__ == name
    assert getattr(trident, value.__qualname__) is value


def test_a_class_reports_trident_without_going_through_the_namespace():
    assert KilledWorker.__module__ == "trident"
    assert repr(KilledWorker) == "<class 'trident.KilledWorker'>"


EXCEPTIONS = [
    trident.KilledWorker("inc-1", ["tcp://w:1"], "killed by SIGKILL", ["killed by SIGKILL"]),
    trident.CancelledError("inc-1"),
    trident.FutureLostError("inc-1"),
    trident.SchedulerLostError("gone"),
    trident.ActorDied("dead"),
    trident.ActorRestarted("restarted"),
    trident.DependencyError("dep"),
    trident.SchedulerError("bad"),
    trident.Reschedule(),
    trident.AuthenticationError("refused"),
    trident.ProtocolError("garbled"),
    trident.SerializationError("the result", "value", "_thread.lock", "cannot pickle"),
    RemoteException("Weird", "text"),
]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_exceptions_pickle_under_their_public_names(exc, protocol):
    data = pickle.dumps(exc, protocol=protocol)
    assert ("trident", type(exc).__name__) in _globals_named(data)
    if protocol == 2:
        assert b"ctrident\n" + type(exc).__name__.encode() + b"\n" in data
    loaded = pickle.loads(data)
    assert type(loaded) is type(exc)
    assert str(loaded) == str(exc)
    assert loaded.args == exc.args
    assert loaded.__dict__ == exc.__dict__


def inc(x):
    return x + 1


async def test_futures_pickle_under_their_public_name(trident_cluster):
    # A future unpickles bound to the default client, as in dask.
    async with trident.Client(trident_cluster, asynchronous=True) as client:
        future = client.submit(inc, 1)
        assert await future == 2
        data = pickle.dumps(future)
        assert ("trident", "Future") in _globals_named(data)
        loaded = pickle.loads(data)
        assert type(loaded) is trident.Future
        assert loaded.key == future.key
        assert await loaded == 2
