"""Waiting in tests for a condition that something else makes true, with a deadline."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import trio

#: Seconds a poll waits before the test fails; generous for a loaded CI machine.
DEADLINE = 10.0


async def wait_until(
    predicate: Callable[[], Any], *, timeout: float = DEADLINE, interval: float = 0.005
) -> Any:
    """Call `predicate` every `interval` seconds until it returns something true, and
    return that; a predicate may return an awaitable, whose result is what counts.

    Raises `trio.TooSlowError` after `timeout` seconds, so a regression fails the test
    instead of hanging it. A checkpoint.
    """
    with trio.fail_after(timeout):
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await trio.sleep(interval)


def wait_until_true(
    predicate: Callable[[], Any], *, timeout: float = DEADLINE, interval: float = 0.01
) -> Any:
    """The blocking `wait_until`: call `predicate` every `interval` seconds until it
    returns something true, and return that. Fails the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        time.sleep(interval)
    return value
