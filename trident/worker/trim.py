"""`trim_memory`: give memory the process freed back to the operating system.

glibc keeps freed heap memory for reuse instead of returning it, so a worker that
spilled 100 MB of results to disk can still show them in its resident memory, and its
memory monitor would keep spilling (or its nanny would terminate it) for memory that is
free. ``malloc_trim(0)`` returns it. Worker processes also start with
``MALLOC_TRIM_THRESHOLD_`` set (see `trident.worker.native_threads`), which makes glibc
return large freed blocks by itself, as dask.distributed does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def trim_memory() -> bool:
    """Return freed heap memory to the operating system (glibc only); whether it could
    be asked. Safe to call from any thread."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
