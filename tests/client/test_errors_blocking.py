"""Errors you can debug, with a blocking client."""

from __future__ import annotations

import threading
import traceback
import types

import pytest

from trident import SerializationError

from .test_errors import async_divide, divide, identity, returns_a_lock


def test_errors_with_a_blocking_client(trident_blocking_client):
    client = trident_blocking_client
    with pytest.raises(SerializationError, match=r"args\[0\]\['conn'\]"):
        client.submit(identity, {"conn": threading.Lock()})
    failing = client.submit(divide, 4, 0)
    assert isinstance(failing.traceback(), types.TracebackType)
    function, args, kwargs, deps = client.get_futures_error(failing)
    assert (function, args, kwargs, deps) == (divide, (4, 0), {}, [])
    with pytest.raises(ZeroDivisionError) as info:
        client.recreate_error_locally(failing)
    assert traceback.extract_tb(info.value.__traceback__)[-1].name == "divide"
    with pytest.raises(ZeroDivisionError):
        client.recreate_error_locally(client.submit(async_divide, 1, 0))
    with pytest.raises(SerializationError, match="result"):
        client.submit(returns_a_lock).result()
