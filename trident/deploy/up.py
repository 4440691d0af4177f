"""`SupervisedCluster`: the runtime of ``trident up``.

A scheduler and `n_workers` worker processes, each under a `Nanny`, all actors in one
trio nursery of the calling process. Cancelling `serve` stops every nanny, which stops
its worker (SIGTERM, then SIGKILL), then the scheduler; worker processes also exit on
their own if this process dies (their stdin pipe closes).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TextIO

import attrs
import trio

from .. import _local_credentials as local_credentials
from ..comm.address import format_address
from ..comm.routes import reachable_address
from ..dashboard import dashboard_for
from ..scheduler.actor import Scheduler
from ..security import Security
from ..sizes import format_bytes
from ..worker.config import WorkerConfig
from ..worker.nanny import Nanny
from .banner import connect_lines, dashboard_lines, remote_worker_lines
from .lifecycle import cancel_on_signals
from .scheduler_files import published

logger = logging.getLogger("trident.deploy")


class SupervisedCluster:
    """A scheduler and nanny-supervised worker processes on this machine.

    Arguments:
        n_workers: worker processes.
        worker_config: how to start each worker (named ``"0"``, ``"1"``, ...); without
            a listen address, workers listen on a free port of `host`.
        host, port: where the scheduler listens (port 0: a free one). An unspecified
            host (``0.0.0.0``) is advertised as the address of the default route's
            interface.
        security: the cluster's token and TLS files; with a certificate the cluster
            uses ``tls://``.
        dashboard_address: ``host:port`` of the HTTP dashboard, or None for none.
        protocol: ``"tcp"`` or ``"tls"``; by default tls when `security` has a
            certificate.

    Attributes once serving: `address` (what clients and workers use), `scheduler`,
    `nannies`.
    """

    def __init__(
        self,
        *,
        n_workers: int,
        worker_config: WorkerConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        security: Security | None = None,
        dashboard_address: str | None = None,
        protocol: str | None = None,
    ):
        self.security = security or Security()
        scheme = protocol or ("tls" if self.security.tls_cert is not None else "tcp")
        self.scheduler = Scheduler(
            format_address(scheme, host, port),
            security=self.security,
            dashboard_address=dashboard_address,
            dashboard_factory=dashboard_for,
        )
        self.n_workers = n_workers
        if worker_config.listen_address is None:
            worker_config = attrs.evolve(
                worker_config, listen_address=format_address(scheme, host, 0)
            )
        #: what each worker is started with (its name aside)
        self.worker_config = worker_config
        self.nannies: list[Nanny] = []
        self.address = ""

    async def serve(
        self, *, task_status: trio.TaskStatus[SupervisedCluster] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start everything; report started once every worker registered; run until
        cancelled. Raises `WorkerStartError` (in an exception group) if a worker
        process exits before it registers, `OSError` if the port is taken."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.scheduler.serve)
            self.address = await reachable_address(self.scheduler.address)
            self.nannies = [
                Nanny(
                    self.address,
                    attrs.evolve(self.worker_config, name=str(i)),
                    security=self.security,
                )
                for i in range(self.n_workers)
            ]
            async with trio.open_nursery() as starting:
                for nanny in self.nannies:
                    starting.start_soon(nursery.start, nanny.serve)
            logger.info("cluster at %s has %d workers", self.address, len(self.nannies))
            task_status.started(self)


async def run_up(
    cluster: SupervisedCluster,
    *,
    scheduler_file: Path | None,
    token_known: bool,
    out: TextIO,
    began: float,
    print_credentials: bool = False,
) -> None:
    """``trident up``: start `cluster`, record its credentials for this user's clients
    (`trident._local_credentials`), write its scheduler file (`scheduler_file`, or the
    default one, see `scheduler_files`), say how to connect, and run until SIGINT or
    SIGTERM; then stop everything and remove what it wrote.

    `began` is the `time.monotonic` at which the command started, for the ready line;
    `print_credentials` adds the command that starts a worker on another machine.
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        await nursery.start(cluster.serve)
        addresses = [cluster.address, *cluster.scheduler.addresses]
        with (
            local_credentials.recorded(addresses, cluster.security),
            published(scheduler_file, cluster.address, cluster.security) as path,
        ):
            options = cluster.worker_config
            threads = _plural(options.nthreads, "thread")
            memory = (
                f"{format_bytes(options.memory_limit)} memory limit each"
                if options.memory_limit
                else "no memory limit"
            )
            lines = [
                f"trident cluster ready in {time.monotonic() - began:.1f} s: "
                f"{_plural(len(cluster.nannies), 'worker')} x {threads}, {memory}",
                *connect_lines(
                    cluster.address,
                    path,
                    cluster.security,
                    token_known=token_known,
                    dashboard=dashboard_lines(cluster.scheduler, cluster.address),
                ),
                *remote_worker_lines(cluster.address, cluster.security, shown=print_credentials),
                "press Ctrl-C to stop",
            ]
            print("\n".join(lines), file=out, flush=True)
            await trio.sleep_forever()
    print("trident cluster stopped", file=out, flush=True)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
