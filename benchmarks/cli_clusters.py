"""Clusters started the way people deploy them: from the command line, scheduler apart.

`--deploy cli` in ``python -m benchmarks`` uses these instead of the in-process
`LocalCluster`s: trident runs ``trident up`` (the scheduler in that process, every worker
in a process of its own under a nanny) and dask runs ``dask scheduler`` and ``dask worker
--nworkers N``. The client is this process in both, so each scheduler has a core-sized
process to itself, as it would on a real cluster; this is the layout of the scaling
benchmark (``nox -s scaling``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 120.0


class CommandLineCluster:
    """The processes of one command-line cluster; `close` stops them all, children too."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str]) -> None:
        self._processes.append(
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: close reaches every child
            )
        )

    def check_running(self) -> None:
        for process in self._processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}")

    def close(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self._processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for_file(path: Path, cluster: CommandLineCluster) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not (path.exists() and path.stat().st_size > 0):
        cluster.check_running()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no scheduler file at {path} after {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.1)
    json.loads(path.read_text())  # written whole, not half


def _wait_for_workers(client: Any, workers: int, cluster: CommandLineCluster) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while len(client.scheduler_info()["workers"]) < workers:
        cluster.check_running()
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {workers} workers after {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.2)


def connect_trident_cli(workers: int, threads: int) -> tuple[CommandLineCluster, Any]:
    """``trident up --nworkers W --nthreads T`` and a client of it."""
    import trident

    scheduler_file = Path(tempfile.mkdtemp(prefix="bench-trident-")) / "scheduler.json"
    cluster = CommandLineCluster()
    try:
        cluster.start(
            [
                *(sys.executable, "-m", "trident", "up"),
                *("--nworkers", str(workers), "--nthreads", str(threads)),
                *("--scheduler-file", str(scheduler_file), "--no-dashboard"),
                *("--memory-limit", "none"),
            ]
        )
        _wait_for_file(scheduler_file, cluster)
        client = trident.Client(scheduler_file=str(scheduler_file), set_as_default=False)
        _wait_for_workers(client, workers, cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def connect_dask_cli(workers: int, threads: int) -> tuple[CommandLineCluster, Any]:
    """``dask scheduler`` plus ``dask worker --nworkers W --nthreads T`` and a client."""
    import distributed

    scheduler_file = Path(tempfile.mkdtemp(prefix="bench-dask-")) / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    cluster = CommandLineCluster()
    try:
        cluster.start(
            [*dask, "--scheduler-file", str(scheduler_file), "--no-dashboard", "--port", "0"]
        )
        _wait_for_file(scheduler_file, cluster)
        cluster.start(
            [
                *(sys.executable, "-m", "distributed.cli.dask_worker"),
                *("--scheduler-file", str(scheduler_file)),
                *("--nworkers", str(workers), "--nthreads", str(threads)),
                *("--memory-limit", "0", "--no-dashboard"),
            ]
        )
        # dask's actor handles find their client through the default client.
        client = distributed.Client(scheduler_file=str(scheduler_file), set_as_default=True)
        _wait_for_workers(client, workers, cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster, client
