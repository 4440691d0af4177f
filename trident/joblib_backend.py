"""joblib's ``'trident'`` backend: ``Parallel`` batches run as tasks on a trident cluster.

Importing this module imports joblib and registers the backend, so that::

    with joblib.parallel_backend("trident"):
        GridSearchCV(estimator, grid, n_jobs=-1).fit(X, y)

runs the fits on the cluster of the default client (or the ``client=`` given as a
backend argument: ``parallel_backend("trident", client=client)``). ``import trident``
registers it without importing joblib: right away when joblib is already imported,
else when joblib is first imported (see `trident._joblib_hook`).

Each joblib batch is one task (key ``joblib-<function>-<id>``); results come back
through the future's done callback, in the client's callback thread, so joblib
dispatches the next batch as soon as one finishes. Batches run joblib's nested calls
with its default nested backend (threads on the worker). A failing call raises its
own exception with its remote traceback in the caller; an aborted ``Parallel`` call
cancels its batches still on the cluster.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import joblib
from joblib.parallel import AutoBatchingMixin, ParallelBackendBase

from .client.client import Client
from .client.future import Future
from .client.worker_client import get_client
from .worker.secession import seceded_for_block

__all__ = ["BACKEND_NAME", "DASK_BACKEND_NAME", "TridentBackend", "dask_backend", "register"]

#: The name to pass to ``joblib.parallel_backend`` / ``joblib.parallel_config``.
BACKEND_NAME = "trident"


def _batch_name(batch: Any) -> str:
    """The name of the function a joblib batch calls, fit for a task key."""
    items = getattr(batch, "items", None) or [(batch, (), {})]
    func = items[0][0]
    func = getattr(func, "func", func)  # functools.partial and sklearn's wrappers
    name = getattr(func, "__name__", None) or type(func).__name__
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


class TridentBackend(AutoBatchingMixin, ParallelBackendBase):
    """A joblib parallel backend that runs each batch of calls as a trident task.

    Arguments:
        client: the blocking `Client` to submit to; by default the client of the task
            this runs in, else the default client.
        wait_for_workers_timeout: seconds to wait for a first worker when the cluster
            has none yet (0: do not wait; `TimeoutError` when none came).
        nesting_level: set by joblib (how deep in nested ``Parallel`` calls).
        inner_max_num_threads: set by joblib (not used: batches run in task threads).
        **submit_kwargs: passed to every `Client.submit` (``resources=``,
            ``workers=``, ``priority=``, ...).

    Raises `ValueError` when no client is running, or when the client is asynchronous
    (joblib waits by blocking).
    """

    MIN_IDEAL_BATCH_DURATION = 0.2
    MAX_IDEAL_BATCH_DURATION = 1.0
    supports_retrieve_callback = True
    default_n_jobs = -1

    def __init__(
        self,
        client: Client | None = None,
        wait_for_workers_timeout: float = 10,
        *,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        **submit_kwargs: Any,
    ):
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        if client is None:
            try:
                client = get_client()
            except (ValueError, RuntimeError) as exc:
                raise ValueError(
                    "joblib's 'trident' backend needs a running trident client: "
                    "start one first, e.g. client = trident.Client()"
                ) from exc
        if client.asynchronous:
            raise ValueError(
                "joblib's 'trident' backend needs a blocking (not asynchronous) client"
            )
        self.client = client
        self.wait_for_workers_timeout = wait_for_workers_timeout
        self.submit_kwargs = submit_kwargs
        self._pending: set[Future] = set()
        self._lock = threading.Lock()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """The cluster's threads (joblib slices work by it); waits for a first worker."""
        threads = sum(self.client.nthreads().values())
        if threads == 0 and self.wait_for_workers_timeout:
            try:
                self.client.wait_for_workers(1, timeout=self.wait_for_workers_timeout)
            except Exception as exc:
                raise TimeoutError(
                    f"the trident cluster has no worker after {self.wait_for_workers_timeout}"
                    " seconds (joblib backend argument wait_for_workers_timeout)"
                ) from exc
            threads = sum(self.client.nthreads().values())
        return max(threads, 1)

    def configure(self, n_jobs: int = 1, parallel: Any = None, **backend_args: Any) -> int:
        self.parallel = parallel
        return self.effective_n_jobs(n_jobs)

    def submit(
        self, func: Callable[[], Any], callback: Callable[[Future], Any] | None = None
    ) -> Future:
        """Run the batch `func` as one task; `callback` gets its future once done."""
        future = self.client.submit(
            func,
            key=f"joblib-{_batch_name(func)}-{uuid.uuid4().hex}",
            pure=False,
            **self.submit_kwargs,
        )
        with self._lock:
            self._pending.add(future)

        def done(finished: Future) -> None:
            with self._lock:
                self._pending.discard(finished)
            if callback is not None:
                callback(finished)

        future.add_done_callback(done)
        return future

    def retrieve_result_callback(self, out: Future) -> Any:
        """The batch's results; raises the exception a call raised."""
        return out.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel the batches still on the cluster (joblib will not read them)."""
        with self._lock:
            pending, self._pending = list(self._pending), set()
        if pending:
            self.client.cancel(pending)

    def terminate(self) -> None:
        self.abort_everything(ensure_ready=False)

    @contextlib.contextmanager
    def retrieval_context(self) -> Iterator[None]:
        """Inside a task, leave the worker's thread slot while joblib waits for results
        (so nested ``Parallel`` calls cannot deadlock the worker)."""
        with seceded_for_block():
            yield


#: joblib's name for dask's backend, which dask code passes to ``parallel_backend``
DASK_BACKEND_NAME = "dask"

#: arguments of dask's backend that trident's has no use for: the scheduler comes from
#: the client, and task arguments travel with their batch without scattering first
_DASK_ONLY_ARGUMENTS = ("scheduler_host", "scatter", "loop")


def _trident_client_running(client: Any) -> bool:
    if client is not None:
        return isinstance(client, Client)
    try:
        get_client()
    except (ValueError, RuntimeError):
        return False
    return True


def dask_backend(**kwargs: Any) -> ParallelBackendBase:
    """joblib's ``"dask"`` backend, as dask code selects it
    (``joblib.parallel_backend("dask")``): trident's backend while a trident client is
    running (or given as ``client=``), else dask's own (which needs dask.distributed).

    dask's ``scatter=``, ``scheduler_host=`` and ``loop=`` are accepted and not needed
    (arguments travel with their batch).
    """
    if _trident_client_running(kwargs.get("client")):
        for name in _DASK_ONLY_ARGUMENTS:
            kwargs.pop(name, None)
        return TridentBackend(**kwargs)
    from joblib._dask import DaskDistributedBackend  # needs dask.distributed

    backend: ParallelBackendBase = DaskDistributedBackend(**kwargs)
    return backend


def register() -> None:
    """Register the backend with joblib under `BACKEND_NAME`, and under joblib's name for
    dask's backend (`dask_backend`). Idempotent."""
    joblib.register_parallel_backend(BACKEND_NAME, TridentBackend)
    joblib.register_parallel_backend(DASK_BACKEND_NAME, dask_backend)


register()
