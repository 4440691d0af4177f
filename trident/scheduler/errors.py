"""Errors of the scheduler's state machine, and the errors it reports itself."""

from __future__ import annotations

from ..protocol import messages as m
from ..protocol.serialize import dumps


class InvalidMessage(Exception):
    """A peer sent a well-formed message that its role may not send."""


def scheduler_error(exc: BaseException) -> m.ErrorInfo:
    """An `ErrorInfo` for an error the scheduler itself decides (lost data, dead workers)."""
    return m.ErrorInfo(dumps(exc), None, f"{type(exc).__name__}: {exc}", "")
