"""`print` and `warn` that show on the clients too, as dask.distributed's do.

Called in a task, ``trident.print(...)`` prints on the worker as ``print`` does and
also on every client of the cluster (they subscribe to the events when they start,
`trident.client.remote_output`); ``trident.warn(...)`` warns there and on every client.
Called anywhere else they are ``print`` and ``warnings.warn``.
"""

from __future__ import annotations

import builtins
import sys
import warnings
from typing import IO, Any

from .._public import publish
from ..client.remote_output import PRINT_TOPIC, WARN_TOPIC
from ..worker.context import current_worker


def print(
    *args: Any,
    sep: str | None = " ",
    end: str | None = "\n",
    file: IO[str] | None = None,
    flush: bool = False,
) -> None:
    """``print(*args, sep=, end=, file=, flush=)``; in a task, the clients print it too
    (to their stderr when `file` is ``sys.stderr``, else their stdout)."""
    builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
    worker = current_worker()
    if worker is None:
        return
    text = (" " if sep is None else sep).join(str(arg) for arg in args)
    event = {"text": text, "end": "\n" if end is None else end, "stderr": file is sys.stderr}
    worker.log_event(PRINT_TOPIC, event)


def warn(message: Any, category: type[Warning] | None = None, stacklevel: int = 1) -> None:
    """``warnings.warn(message, category, stacklevel)``; in a task, the clients warn
    too (with the same builtin category, else `UserWarning`)."""
    if isinstance(message, Warning):
        category = type(message)
    warnings.warn(message, category, stacklevel=stacklevel + 1)
    worker = current_worker()
    if worker is None:
        return
    name = (category or UserWarning).__name__
    worker.log_event(WARN_TOPIC, {"message": str(message), "category": name})


publish(globals())
