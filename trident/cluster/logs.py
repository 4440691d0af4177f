"""`cluster_logs`: what a cluster's ``get_logs`` returns, as dask's clusters do.

A short-lived client of the cluster reads the scheduler's and the workers' recent log
records (`Client.get_scheduler_logs`, `Client.get_worker_logs`), so in-process workers
and worker processes are read the same way. Each entry is the records' text, one line
per record, keyed ``"Cluster"`` (the manager's own: `ClusterManager._manager_log`),
``"Scheduler"`` and each worker's address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client.client import Client

if TYPE_CHECKING:
    from .manager import ClusterManager


def _text(records: list[Any]) -> str:
    return "\n".join(str(message) for _level, message in records)


def _collect(
    cluster: ClusterManager, want: tuple[bool, bool, bool], scheduler: Any, workers: Any
) -> dict[str, str]:
    cluster_part, scheduler_part, workers_part = want
    logs: dict[str, str] = {}
    if cluster_part:
        logs["Cluster"] = cluster._manager_log()
    if scheduler_part:
        logs["Scheduler"] = _text(scheduler)
    if workers_part:
        for address, records in sorted(workers.items()):
            logs[address] = _text(records)
    return logs


def cluster_logs(cluster: ClusterManager, want: tuple[bool, bool, bool]) -> Any:
    """The logs of `cluster` (see the module): a dict, or a coroutine for an
    asynchronous cluster. `want` says which of cluster, scheduler, workers to include."""
    if cluster.asynchronous:
        return _cluster_logs_async(cluster, want)
    with Client(cluster, set_as_default=False) as client:
        scheduler = client.get_scheduler_logs() if want[1] else []
        workers = client.get_worker_logs() if want[2] else {}
        return _collect(cluster, want, scheduler, workers)


async def _cluster_logs_async(
    cluster: ClusterManager, want: tuple[bool, bool, bool]
) -> dict[str, str]:
    async with Client(cluster, asynchronous=True, set_as_default=False) as client:
        scheduler = await client.get_scheduler_logs() if want[1] else []
        workers = await client.get_worker_logs() if want[2] else {}
        return _collect(cluster, want, scheduler, workers)
