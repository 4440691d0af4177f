"""``trident scheduler`` and ``trident worker``: one actor per process, for several machines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import trio

from .. import _local_credentials as local_credentials
from .._preload import Preloads
from ..cluster.lending import lend_client
from ..comm.routes import reachable_address
from ..dashboard import dashboard_for
from ..scheduler.actor import Scheduler
from ..security import Security
from ..worker.actor import Worker
from ..worker.config import WorkerConfig
from ..worker.nanny import Nanny
from ..worker.native_threads import limit_this_process
from .banner import connect_lines, dashboard_lines, remote_worker_lines
from .lifecycle import cancel_on_signals, serve_then_cancel
from .scheduler_files import published


async def run_scheduler(
    address: str,
    *,
    security: Security,
    scheduler_file: Path | None,
    token_known: bool,
    out: TextIO,
    dashboard_address: str | None = None,
    preload: Sequence[str] = (),
    print_credentials: bool = False,
) -> None:
    """Serve a scheduler at `address` (and its dashboard) until SIGINT or SIGTERM.

    Once listening, records its credentials for this user's clients
    (`trident._local_credentials`) and writes its scheduler file (`scheduler_file`, or
    the default one, see `scheduler_files`); removes both when stopping. The `preload`
    modules' setup hooks get the `Scheduler` once it listens. `print_credentials` adds
    the command that starts a worker on another machine. Raises `OSError` if the
    address cannot be bound, `PreloadError` if a preload module cannot be imported.
    """
    preloads = Preloads(preload)
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        scheduler = Scheduler(
            address,
            security=security,
            dashboard_address=dashboard_address,
            dashboard_factory=dashboard_for,
        )
        await nursery.start(scheduler.serve)
        await preloads.setup(scheduler)
        advertised = await reachable_address(scheduler.address)
        try:
            with (
                local_credentials.recorded([advertised, *scheduler.addresses], security),
                published(scheduler_file, advertised, security) as path,
            ):
                lines = [
                    "trident scheduler ready",
                    *connect_lines(
                        advertised,
                        path,
                        security,
                        token_known=token_known,
                        dashboard=dashboard_lines(scheduler, advertised),
                    ),
                    *remote_worker_lines(advertised, security, shown=print_credentials),
                    "press Ctrl-C to stop",
                ]
                print("\n".join(lines), file=out, flush=True)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await preloads.teardown(scheduler)
    print("trident scheduler stopped", file=out, flush=True)


async def run_worker(
    scheduler_address: str,
    *,
    config: WorkerConfig,
    security: Security,
    nanny: bool,
    out: TextIO,
) -> None:
    """Serve one worker (under a `Nanny`, or in this process) until SIGINT, SIGTERM or
    the scheduler staying out of reach for ``config.reconnect_timeout`` seconds.

    Raises `AuthenticationError` or `OSError` if the scheduler refuses or cannot be
    reached, `WorkerStartError` if a nanny's first worker process fails.
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        if nanny:
            supervisor = Nanny(scheduler_address, config, security=security)
            await nursery.start(serve_then_cancel, supervisor.serve, nursery.cancel_scope)
            address, how = supervisor.worker_address, f"pid {supervisor.worker_pid}, under a nanny"
        else:
            # This process runs the worker alone: its BLAS/OpenMP pools get the
            # worker's thread count, as a nanny's worker process does.
            limit_this_process(config.nthreads)
            worker = Worker.from_config(
                scheduler_address, config, security=security, client_factory=lend_client
            )
            await nursery.start(serve_then_cancel, worker.serve, nursery.cancel_scope)
            address, how = worker.address, "no nanny"
        print(
            f"trident worker {address} ({how}) joined {scheduler_address}; press Ctrl-C to stop",
            file=out,
            flush=True,
        )
    print("trident worker stopped", file=out, flush=True)
