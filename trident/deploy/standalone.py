"""``trident scheduler`` and ``trident worker``: one actor per process, for several machines."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import trio

from .. import _local_credentials as local_credentials
from ..cluster.lending import lend_client
from ..comm.liveness import RECONNECT_TIMEOUT
from ..comm.routes import reachable_address
from ..dashboard import dashboard_for
from ..scheduler.actor import Scheduler
from ..security import Security
from ..worker.actor import Worker
from ..worker.nanny import Nanny, WorkerOptions
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
    print_credentials: bool = False,
) -> None:
    """Serve a scheduler at `address` (and its dashboard) until SIGINT or SIGTERM.

    Once listening, records its credentials for this user's clients
    (`trident._local_credentials`) and writes its scheduler file (`scheduler_file`, or
    the default one, see `scheduler_files`); removes both when stopping.
    `print_credentials` adds the command that starts a worker on another machine.
    Raises `OSError` if the address cannot be bound.
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        scheduler = Scheduler(
            address,
            security=security,
            dashboard_address=dashboard_address,
            dashboard_factory=dashboard_for,
        )
        await nursery.start(scheduler.serve)
        advertised = await reachable_address(scheduler.address)
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
    print("trident scheduler stopped", file=out, flush=True)


async def run_worker(
    scheduler_address: str,
    *,
    options: WorkerOptions,
    security: Security,
    nanny: bool,
    out: TextIO,
    reconnect_timeout: float = RECONNECT_TIMEOUT,
) -> None:
    """Serve one worker (under a `Nanny`, or in this process) until SIGINT, SIGTERM or
    the scheduler staying out of reach for `reconnect_timeout` seconds.

    Raises `AuthenticationError` or `OSError` if the scheduler refuses or cannot be
    reached, `WorkerStartError` if a nanny's first worker process fails.
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        if nanny:
            supervisor = Nanny(
                scheduler_address,
                options,
                security=security,
                reconnect_timeout=reconnect_timeout,
            )
            await nursery.start(serve_then_cancel, supervisor.serve, nursery.cancel_scope)
            address, how = supervisor.worker_address, f"pid {supervisor.worker_pid}, under a nanny"
        else:
            worker = Worker(
                scheduler_address,
                nthreads=options.nthreads,
                name=options.name,
                listen_address=options.listen_address,
                contact_address=options.contact_address,
                memory_limit=options.memory_limit,
                resources=options.resources,
                security=security,
                reconnect_timeout=reconnect_timeout,
                client_factory=lend_client,
            )
            await nursery.start(serve_then_cancel, worker.serve, nursery.cancel_scope)
            address, how = worker.address, "no nanny"
        print(
            f"trident worker {address} ({how}) joined {scheduler_address}; press Ctrl-C to stop",
            file=out,
            flush=True,
        )
    print("trident worker stopped", file=out, flush=True)
