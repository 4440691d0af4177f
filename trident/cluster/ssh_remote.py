"""The process `SSHCluster` runs on each remote host: ``python -m trident.cluster.ssh_remote``.

Its standard input carries, as the first line, one JSON object: ``{"role":
"scheduler" | "worker", "credential": ..., ...}`` (see `run_scheduler` and
`run_worker` for the other fields). The credential (the cluster token, with the TLS
certificate's pin) comes this way so that no command line on the host shows it. Once
its scheduler or worker is up it writes one JSON line to standard output (``{"address":
...}``, and for a scheduler its TLS pin and dashboard address), then serves until its
standard input ends: when the cluster closes it, or when the ssh connection that
carries it is lost, so nothing outlives its cluster. SIGTERM and SIGINT stop it too.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from typing import Any

import attrs
import trio

from ..dashboard import dashboard_for
from ..scheduler.actor import Scheduler
from ..scheduler.liveness import LivenessSettings
from ..security import Security
from ..worker.config import WorkerConfig
from ..worker.nanny import Nanny

#: The settings of `scheduler_options` that go to the scheduler's `LivenessSettings`.
LIVENESS_OPTIONS = frozenset(attrs.fields_dict(LivenessSettings))


def _ready(report: dict[str, Any]) -> None:
    print(json.dumps(report), flush=True)


async def _until_stdin_closes() -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some(4096):
            pass


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


async def _serve_until_released(serve: Any) -> None:
    async with trio.open_nursery() as nursery:

        async def release_on(wait: Any) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(release_on, _until_stdin_closes)
        nursery.start_soon(release_on, _until_signalled)
        await serve(nursery)
        # `serve` returns once up; the nursery runs until released.


async def run_scheduler(spec: dict[str, Any]) -> None:
    """Serve a scheduler on ``spec["host"]`` (port ``spec.get("port", 0)``). With
    ``spec["tls"]`` (the default), a throwaway certificate made here secures it; the
    report carries its SHA-256 pin. ``spec["dashboard_address"]`` (``":port"`` or
    ``"host:port"``, None for none) and the liveness settings (``worker_timeout``,
    ...) are passed on."""
    host = spec["host"]
    token = Security().with_credential(spec.get("credential")).token
    liveness = LivenessSettings(**{k: v for k, v in spec.items() if k in LIVENESS_OPTIONS})
    dashboard = spec.get("dashboard_address", ":8787")
    if isinstance(dashboard, str) and dashboard.startswith(":"):
        dashboard = f"{host}{dashboard}"
    with tempfile.TemporaryDirectory(prefix="trident-tls-") as directory:
        if spec.get("tls", True):
            security = Security.self_signed(
                directory, token=token, hosts=(host,), require_client_cert=False
            )
        else:
            security = Security(token)
        scheme = "tls" if security.tls else "tcp"
        scheduler = Scheduler(
            f"{scheme}://{host}:{int(spec.get('port', 0))}",
            security=security,
            liveness=liveness,
            dashboard_address=dashboard,
            dashboard_factory=dashboard_for if dashboard is not None else None,
            allowed_failures=int(spec.get("allowed_failures", 3)),
        )

        async def serve(nursery: trio.Nursery) -> None:
            await nursery.start(scheduler.serve)
            _ready(
                {
                    "address": scheduler.address,
                    "tls_fingerprint": security.tls_fingerprint,
                    "dashboard_address": scheduler.dashboard_address,
                }
            )

        await _serve_until_released(serve)


async def run_worker(spec: dict[str, Any]) -> None:
    """Serve a worker under a `Nanny` (restarted when its process dies), named
    ``spec["name"]``, for the scheduler at ``spec["scheduler"]``; ``spec["options"]``
    are `WorkerConfig` settings (``listen_address`` among them; by default a free
    port on the interface that faces the scheduler)."""
    security = Security().with_credential(spec.get("credential"))
    scheduler = spec["scheduler"]
    # Without a listen address the worker listens on the interface facing the scheduler.
    config = WorkerConfig(**spec.get("options", {}), name=spec["name"])
    nanny = Nanny(scheduler, config, security=security)

    async def serve(nursery: trio.Nursery) -> None:
        async def supervise(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await nanny.serve(task_status=task_status)
            nursery.cancel_scope.cancel()  # retired, or the scheduler stayed away

        await nursery.start(supervise)
        _ready({"address": nanny.worker_address, "pid": os.getpid()})

    await _serve_until_released(serve)


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    role = spec.get("role")
    runner = {"scheduler": run_scheduler, "worker": run_worker}.get(role)
    if runner is None:
        raise SystemExit(f"unknown role {role!r}")
    trio.run(runner, spec)


if __name__ == "__main__":
    main()
