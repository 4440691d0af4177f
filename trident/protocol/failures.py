"""`error_info_for`: an `ErrorInfo` for an error trident decides itself.

Tasks' own exceptions are packaged by the worker, with their traceback
(`trident.worker.executor.error_info`). Errors that no user code raised — lost data, a
dead worker, a lost connection — are made here, by the scheduler or by a client.
"""

from __future__ import annotations

from .messages import ErrorInfo
from .serialize import dumps


def error_info_for(exc: BaseException) -> ErrorInfo:
    """`exc` as an `ErrorInfo` with no traceback and no worker."""
    return ErrorInfo(dumps(exc), None, f"{type(exc).__name__}: {exc}", "")
