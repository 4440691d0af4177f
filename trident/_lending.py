"""Which worker lends a client to the calling code: `lending` and `current_lender`.

A worker marks the context of every task and actor method it runs with itself
(`trident.worker.context.task_context`); client-side code (`get_client`, values that bind
to a client when they are unpickled) reads the lent client back with `current_lender`.
This neutral leaf is how the two meet without the worker and the client importing each
other.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Lender(Protocol):
    """The worker running the calling code, as the client side sees it."""

    @property
    def address(self) -> str:
        """The worker's address, for messages."""
        ...

    @property
    def client(self) -> object | None:
        """The client it lends to its tasks; None before it is connected or without one."""
        ...


_lender: contextvars.ContextVar[Lender | None] = contextvars.ContextVar(
    "trident_lender", default=None
)


@contextmanager
def lending(lender: Lender) -> Iterator[None]:
    """Code run in this block (thread or trio task) runs for `lender`."""
    token = _lender.set(lender)
    try:
        yield
    finally:
        _lender.reset(token)


def current_lender() -> Lender | None:
    """The worker the calling code runs for, or None outside tasks and actor methods."""
    return _lender.get()
