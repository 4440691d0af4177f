"""`ClusterRuntime`: the trio side of a local cluster (scheduler plus workers).

Workers are either `Worker` actors in the same trio loop or worker processes, each
supervised by a `Nanny` actor in the runtime's loop (as in dask.distributed's
LocalCluster): a worker process that dies is restarted, and the scheduler hears why it
died (signal, exit code, out of memory), which `KilledWorker` errors then name. Each
worker (or nanny) runs in a task of the runtime's nursery, so closing the runtime stops
every worker; a worker process is terminated, then killed if it does not exit, and it
also exits on its own when its parent dies.
A worker that stops on its own (it was retired) leaves `workers`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import attrs
import trio

from .. import _gc
from .. import _local_credentials as local_credentials
from ..comm.transports import unique_inproc_address
from ..dashboard import dashboard_for
from ..scheduler.actor import Scheduler
from ..security import Security
from ..worker.actor import Worker
from ..worker.config import WorkerConfig
from ..worker.nanny import Nanny
from .lending import lend_client

logger = logging.getLogger("trident.cluster")


class WorkerHandle:
    """A running worker of a local cluster: in-process, or a process under a nanny."""

    def __init__(self, spec: WorkerConfig):
        if spec.name is None:
            raise ValueError("a local cluster's workers need names")
        self.spec = spec
        self.name: str = spec.name
        self.worker: Worker | None = None
        self.nanny: Nanny | None = None
        self.scope = trio.CancelScope()
        #: set when the handle leaves `ClusterRuntime.workers` (stopped, retired or lost)
        self.left = trio.Event()

    @property
    def process(self) -> trio.Process | None:
        """The worker's current process (None in-process, or while its nanny restarts it)."""
        return self.nanny.process if self.nanny is not None else None

    @property
    def pid(self) -> int | None:
        if self.nanny is not None:
            return self.nanny.worker_pid
        return os.getpid()

    @property
    def address(self) -> str:
        if self.nanny is not None:
            return self.nanny.worker_address
        return self.worker.address if self.worker is not None else ""

    def __repr__(self) -> str:
        kind = f"pid={self.process.pid}" if self.process is not None else "in-process"
        return f"<WorkerHandle {self.name!r} {kind}>"


class ClusterRuntime:
    """Runs a scheduler and a set of workers inside one trio nursery.

    Each worker is described by a named `WorkerConfig`; one without a listen address
    listens on `worker_listen` (default: in-process next to an in-process scheduler,
    else a free TCP port on 127.0.0.1).
    """

    def __init__(
        self,
        *,
        scheduler_address: str,
        processes: bool,
        security: Security,
        worker_listen: str | None,
        dashboard_address: str | int | None = None,
        allowed_failures: int = 3,
    ):
        self.processes = processes
        self.security = security
        self.scheduler = Scheduler(
            scheduler_address,
            extra_addresses=()
            if scheduler_address.startswith("inproc://")
            else (unique_inproc_address("scheduler"),),
            security=security,
            dashboard_address=dashboard_address,
            dashboard_factory=dashboard_for,
            allowed_failures=allowed_failures,
        )
        self.workers: dict[str, WorkerHandle] = {}
        self._worker_listen = worker_listen
        self._nursery: trio.Nursery | None = None
        self.trio_token: trio.lowlevel.TrioToken | None = None

    @property
    def scheduler_address(self) -> str:
        return self.scheduler.address

    def address_for_caller(self, same_loop: bool | None = None) -> str:
        """The scheduler address best for a client in the calling trio run.

        A client in the same trio run as this runtime gets the in-process address.
        """
        if same_loop is None:
            try:
                same_loop = trio.lowlevel.current_trio_token() is self.trio_token
            except RuntimeError:
                same_loop = False
        if same_loop:
            for address in self.scheduler.addresses:
                if address.startswith("inproc://"):
                    return address
        return self.scheduler.address

    async def serve(
        self, *, task_status: trio.TaskStatus[ClusterRuntime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the scheduler; run until cancelled (add workers with `start_worker`)."""
        self.trio_token = trio.lowlevel.current_trio_token()
        _gc.acquire()  # the scheduler and in-process workers keep many small records
        try:
            await self._serve(task_status)
        finally:
            _gc.release()

    async def _serve(self, task_status: trio.TaskStatus[Any]) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.scheduler.serve)
            # The owner's clients find the token by the address alone (`_local_credentials`).
            with local_credentials.recorded(self.scheduler.addresses, self.security):
                task_status.started(self)
                await trio.sleep_forever()

    async def start_worker(self, spec: WorkerConfig) -> WorkerHandle:
        """Start the worker `spec` (named) and return its handle, once it runs (a worker
        process: once it registered with the scheduler). It is in `workers` from the
        start. Raises `WorkerStartError` if the first worker process exits before."""
        assert self._nursery is not None
        handle = WorkerHandle(spec)
        self.workers[handle.name] = handle
        runner = self._run_process if self.processes else self._run_in_process
        await self._nursery.start(runner, handle)
        return handle

    def stop_worker(self, handle: WorkerHandle) -> None:
        """Stop the worker of `handle` (at once: its results are lost unless it was
        retired first); it leaves `workers` now, its process ends soon after."""
        handle.scope.cancel()
        self._forget(handle)

    async def _run_in_process(self, handle: WorkerHandle, *, task_status: Any) -> None:
        spec = handle.spec
        if spec.listen_address is None:
            spec = attrs.evolve(spec, listen_address=self._worker_listen)
        worker = Worker.from_config(
            self._worker_scheduler_address(),
            spec,
            security=self.security,
            client_factory=lend_client,
        )
        handle.worker = worker
        with handle.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                task_status.started()
        if not handle.scope.cancelled_caught:
            self._forget(handle)

    def _worker_scheduler_address(self) -> str:
        if not self.processes:
            for address in self.scheduler.addresses:
                if address.startswith("inproc://") and (
                    self._worker_listen is None or self._worker_listen.startswith("inproc://")
                ):
                    return address
        return self.scheduler.address

    async def _run_process(self, handle: WorkerHandle, *, task_status: Any) -> None:
        """Run a worker process under a nanny; started once the worker registered.

        Raises `WorkerStartError` if the first worker process exits before that.
        """
        spec = handle.spec
        if spec.listen_address is None:
            spec = attrs.evolve(spec, listen_address=self._worker_listen or "tcp://127.0.0.1:0")
        nanny = handle.nanny = Nanny(self.scheduler.address, spec, security=self.security)
        with handle.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(nanny.serve)
                task_status.started()
        if not handle.scope.cancelled_caught:
            self._forget(handle)  # retired, or the scheduler stayed out of reach

    def _forget(self, handle: WorkerHandle) -> None:
        if self.workers.get(handle.name) is handle:
            del self.workers[handle.name]
        handle.left.set()
