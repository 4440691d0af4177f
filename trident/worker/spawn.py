"""Starting and stopping worker processes from their parent (a local cluster or a nanny).

A worker process is ``python -m trident.deploy.worker_process SETTINGS_JSON``.
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

STOP_GRACE_SECONDS = 3.0


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
