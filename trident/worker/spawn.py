"""Starting and stopping worker processes from their parent (a local cluster or a nanny).

A worker process is ``python -m trident.deploy.worker_process SETTINGS_JSON``, with
the settings of `process_settings` (the cluster token goes in ``TRIDENT_TOKEN``).
It runs in its own session, so a terminal's Ctrl-C reaches the parent only, and the
parent decides what to stop; stopping is SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import trio

from ..security import Security
from .config import WorkerConfig

STOP_GRACE_SECONDS = 3.0


def process_settings(
    scheduler_address: str,
    config: WorkerConfig,
    security: Security,
    *,
    report_fd: int | None = None,
    watch_stdin: bool = True,
) -> dict[str, Any]:
    """The JSON-safe settings of a worker process: `config` (``"worker"``), where the
    scheduler is, the TLS file paths (never the token: pass it in ``TRIDENT_TOKEN``),
    this process's import path, and the pipe to report readiness on (see
    `trident.deploy.worker_process`)."""
    return {
        "scheduler": scheduler_address,
        "worker": config.to_settings(),
        "security": security.tls_settings() if security.tls else None,
        "sys_path": import_path(),
        "report_fd": report_fd,
        "watch_stdin": watch_stdin,
    }


def worker_command(settings: dict[str, Any]) -> list[str]:
    """The command line that starts a worker process with `settings`."""
    return [sys.executable, "-m", "trident.deploy.worker_process", json.dumps(settings)]


def import_path() -> list[str]:
    """This process's import path, for the settings' ``sys_path``.

    Like multiprocessing, workers get the parent's import path so that functions from
    the user's own modules (pickled by reference) import there too.
    """
    return [entry or os.getcwd() for entry in sys.path]


async def stop_process(process: trio.Process, grace: float = STOP_GRACE_SECONDS) -> None:
    """Terminate a process, kill it after `grace` seconds, and reap it.

    Closes its stdin pipe too (a worker process also exits on that). Checkpoints; call
    it shielded from cancellation when cleaning up.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with trio.move_on_after(grace):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.stdin is not None:
        await process.stdin.aclose()
