"""Entry point of a worker process started by `LocalCluster` or a `Nanny`:
``python -m trident.deploy.worker_process SETTINGS_JSON``.

The process serves one `Worker` until the scheduler stays out of reach (exit code
`SCHEDULER_LOST_EXIT_CODE`), it receives SIGTERM or SIGINT, or its parent dies (its
stdin, a pipe from the parent, reaches end of file).
Settings arrive as one JSON argument (`trident.worker.spawn.process_settings`: the
`WorkerConfig`, TLS settings as file paths); the cluster token arrives in
``TRIDENT_TOKEN``, never on the command line. With ``"report_fd"`` the
process writes ``{"address": ...}`` and a newline to that file descriptor once its
worker is registered, then closes it: that is how a nanny learns it is up.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from typing import Any

import trio

from .._gc import tune_for_service
from ..cluster.lending import lend_client
from ..security import Security, token_from_environment
from ..worker.actor import Worker
from ..worker.config import WorkerConfig
from ..worker.exits import SCHEDULER_LOST_EXIT_CODE
from .lifecycle import cancel_on_signals, serve_then_cancel


async def _watch_parent(cancel_scope: trio.CancelScope) -> None:
    """Cancel everything when the parent's end of our stdin pipe closes."""
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            cancel_scope.cancel()
            return


def _report_ready(fd: int, worker: Worker) -> None:
    with os.fdopen(fd, "w") as report:
        report.write(json.dumps({"address": worker.address}) + "\n")


async def run(settings: dict[str, Any], *, watch_stdin: bool) -> None:
    security = Security.from_tls_settings(settings.get("security"), token_from_environment())
    config = WorkerConfig.from_settings(settings.get("worker", {}))
    worker = Worker.from_config(
        settings["scheduler"], config, security=security, client_factory=lend_client
    )
    async with trio.open_nursery() as nursery:
        if watch_stdin:
            nursery.start_soon(_watch_parent, nursery.cancel_scope)
        nursery.start_soon(cancel_on_signals, nursery.cancel_scope)
        await nursery.start(serve_then_cancel, worker.serve, nursery.cancel_scope)
        if settings.get("report_fd") is not None:
            _report_ready(settings["report_fd"], worker)
    if worker.lost_scheduler:
        raise SystemExit(SCHEDULER_LOST_EXIT_CODE)


def configure_logging(console_level: str | int) -> None:
    """Print records at `console_level` and above; keep trident's INFO records too.

    The worker's `LogBuffer` (``Client.get_worker_logs``) sees what the ``trident``
    logger lets through, so that logger passes INFO while the console handler shows only
    `console_level`.
    """
    handler = logging.StreamHandler()
    handler.setLevel(console_level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(console_level)
    trident_logger = logging.getLogger("trident")
    level = (
        console_level
        if isinstance(console_level, int)
        else logging.getLevelName(console_level.upper())
    )
    if isinstance(level, int) and level > logging.INFO:
        trident_logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m trident.deploy.worker_process SETTINGS_JSON", file=sys.stderr)
        raise SystemExit(2)
    settings = json.loads(argv[0])
    for entry in reversed(settings.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    configure_logging(settings.get("worker", {}).get("log_level", "WARNING"))
    with contextlib.suppress(KeyboardInterrupt):
        tune_for_service()
        trio.run(functools.partial(run, settings, watch_stdin=settings.get("watch_stdin", True)))


if __name__ == "__main__":
    main()
