"""How many threads the native libraries of a worker process may start.

NumPy's BLAS (OpenBLAS, MKL, BLIS, Accelerate/vecLib), OpenMP and numexpr start one
thread per core by default. A worker already runs `nthreads` tasks at once, so on a
machine with several workers each task's matrix product would start a pool of its own
and the machine would run many more busy threads than it has cores: two single-thread
workers on two cores ran four BLAS threads and made a tall-skinny SVD 2-15x slower.
As dask.distributed does, a worker process starts with these pools limited to its
thread count, and with ``MALLOC_TRIM_THRESHOLD_`` set so that glibc returns large
freed blocks to the operating system rather than keeping them (see `trim`).

The variables must be in the environment before the libraries load, so the parent (the
nanny) sets them when it starts the process. Variables the user set themselves are
kept. Set ``TRIDENT_LIMIT_NATIVE_THREADS=0`` to leave the pools at the libraries'
defaults. In-process workers share the user's process, whose thread pools they leave
alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Environment variables that limit the thread pools of native libraries.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: glibc returns freed blocks above this many bytes to the system (dask's value).
MALLOC_TRIM_THRESHOLD = 65536
#: Set to "0" (or "false", "no", "off") to leave the native thread pools alone.
LIMIT_ENV = "TRIDENT_LIMIT_NATIVE_THREADS"


def limit_native_threads(environ: Mapping[str, str]) -> bool:
    """Whether worker processes limit native thread pools (``TRIDENT_LIMIT_NATIVE_THREADS``,
    default yes)."""
    return environ.get(LIMIT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def worker_environment(nthreads: int, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` plus the variables for a worker process running `nthreads` threads:
    each thread-pool size (unless limiting is off) and ``MALLOC_TRIM_THRESHOLD_``, where
    `environ` does not set them already."""
    env = dict(environ)
    if limit_native_threads(environ):
        for name in THREAD_VARIABLES:
            env.setdefault(name, str(max(1, nthreads)))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(MALLOC_TRIM_THRESHOLD))
    return env


def limit_this_process(nthreads: int) -> None:
    """Limit this process's native thread pools to `nthreads`, for a process that runs
    only a worker but was not started by a nanny (``trident worker --no-nanny``).

    The variables are set for libraries that load later; threadpoolctl limits those
    already loaded, which no longer read them. Does nothing when limiting is off.
    """
    if not limit_native_threads(os.environ):
        return
    for name, value in worker_environment(nthreads, os.environ).items():
        os.environ.setdefault(name, value)
    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, nthreads))
