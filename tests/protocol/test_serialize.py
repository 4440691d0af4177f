"""User data: pickle protocol 5, cloudpickle fallback, futures as persistent ids."""

from __future__ import annotations

import numpy as np
import pytest

from trident.protocol.serialize import (
    dumps,
    dumps_function,
    dumps_task_args,
    loads,
    loads_task_args,
    register_future_type,
    sizeof,
    token_of,
)


class FakeFuture:
    def __init__(self, key):
        self.key = key


@pytest.fixture(autouse=True)
def _fake_future_type():
    from trident.client.future import Future

    register_future_type(FakeFuture)
    yield
    register_future_type(Future)


def test_plain_and_lambda_objects_round_trip():
    assert loads(dumps({"a": [1, 2.5, "x"]})) == {"a": [1, 2.5, "x"]}
    square = loads(dumps(lambda x: x * x))
    assert square(7) == 49


def test_numpy_buffers_go_out_of_band():
    array = np.ones((500, 500))
    payload = dumps(array)
    assert len(payload.buffers) == 1
    assert len(payload.header) < 1000
    np.testing.assert_array_equal(loads(payload), array)


def test_functions_are_pickled_once_and_cached():
    def f(x):
        return x

    first = dumps_function(f)
    assert dumps_function(f) is first
    payload, token = first
    assert loads(payload)(3) == 3
    assert len(token) == 24


def test_callables_that_differ_only_in_their_buffers_get_different_tokens():
    import functools

    ones, twos = np.ones(100_000), np.full(100_000, 2.0)
    (first, first_token) = dumps_function(functools.partial(np.sum, ones))
    (second, second_token) = dumps_function(functools.partial(np.sum, twos))
    assert bytes(first.header) == bytes(second.header)  # the arrays travel out of band
    assert first_token != second_token
    assert dumps_function(functools.partial(np.sum, np.ones(100_000)))[1] == first_token


def test_futures_anywhere_in_arguments_become_dependencies():
    a, b = FakeFuture("a-1"), FakeFuture("b-2")
    payload, deps = dumps_task_args((1, [a, {"k": (b,)}]), {"x": a})
    assert deps == ["a-1", "b-2"]
    args, kwargs = loads_task_args(payload, {"a-1": 10, "b-2": 20})
    assert args == (1, [10, {"k": (20,)}])
    assert kwargs == {"x": 10}


def test_atomic_arguments_take_the_fast_path():
    payload, deps = dumps_task_args((1, "x", 2.5, None), {"y": b"z"})
    assert deps == []
    assert loads_task_args(payload, {}) == ((1, "x", 2.5, None), {"y": b"z"})


def test_lambdas_in_arguments_use_cloudpickle():
    payload, deps = dumps_task_args((lambda: 5, FakeFuture("k")), {})
    assert deps == ["k"]
    args, _ = loads_task_args(payload, {"k": 1})
    assert args[0]() == 5
    assert args[1] == 1


def test_unpicklable_arguments_raise():
    import threading

    with pytest.raises(TypeError):
        dumps_task_args((threading.Lock(),), {})


def test_tokens_are_deterministic():
    assert token_of(b"a", "b") == token_of(b"a", "b")
    assert token_of(b"a", "b") != token_of(b"ab")


def test_sizeof():
    assert sizeof(np.zeros(1000)) == 8000
    assert sizeof(b"x" * 1000) >= 1000
    assert sizeof(list(range(100_000))) > 100_000
    assert sizeof({"a": b"x" * 100}) > 100
    assert sizeof(object()) > 0
