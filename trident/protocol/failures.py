"""Failures as they travel: `ErrorInfo` for user code's exceptions and trident's own.

`error_info` packages an exception that user code raised (a task, an actor method, a
function run with `Client.run`), with its traceback; `RemoteException` stands in for one
that cannot be pickled or unpickled. `error_info_for` makes one for an error that no user
code raised (lost data, a dead worker, a lost connection): the scheduler's or a client's.
Every role uses these, so they live here, below all of them.
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any

import tblib

from .._public import publish
from .messages import ErrorInfo
from .serialize import dumps


class RemoteException(Exception):
    """Stands in for a task's exception that could not be pickled or unpickled."""

    def __init__(self, type_name: str, text: str):
        self.type_name = type_name
        self.text = text
        super().__init__(f"{type_name}: {text}")

    def __reduce__(self) -> tuple:
        return (RemoteException, (self.type_name, self.text))


def _user_traceback(exc: BaseException) -> Any:
    """The traceback of `exc` without trident's own frames at its start."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("trident."):
        tb = tb.tb_next
    return tb


def error_info(exc: BaseException, worker: str) -> ErrorInfo:
    """Package an exception raised by user code for the trip to whoever waits for it."""
    tb = _user_traceback(exc)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        payload = dumps(exc)
        pickle.loads(payload.header, buffers=payload.buffers)  # the client must load it too
    except Exception:
        payload = dumps(RemoteException(type(exc).__qualname__, str(exc)))
    tb_payload = None
    if tb is not None:
        try:
            tb_payload = dumps(tblib.Traceback(tb).as_dict())
        except Exception:
            tb_payload = None
    return ErrorInfo(payload, tb_payload, text, worker)


def error_info_for(exc: BaseException) -> ErrorInfo:
    """`exc` as an `ErrorInfo` with no traceback and no worker."""
    return ErrorInfo(dumps(exc), None, f"{type(exc).__name__}: {exc}", "")


publish(globals())
