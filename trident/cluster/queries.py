"""What a cluster manager asks its scheduler for dask's ``Cluster`` methods:
``wait_for_workers``, ``scheduler_info`` and ``get_client``.

As `trident.cluster.logs` does for ``get_logs``, a short-lived client of the cluster
asks (so in-process and remote schedulers are asked the same way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client.client import Client, default_client

if TYPE_CHECKING:
    from .manager import ClusterManager


def wait_for_workers(cluster: ClusterManager, n_workers: int, timeout: float | None) -> Any:
    """Return once `cluster`'s scheduler has at least `n_workers` workers; a coroutine
    for an asynchronous cluster. Raises `TimeoutError` after `timeout` seconds."""
    if cluster.asynchronous:
        return _wait_for_workers_async(cluster, n_workers, timeout)
    with Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(n_workers, timeout=timeout)
    return None


async def _wait_for_workers_async(
    cluster: ClusterManager, n_workers: int, timeout: float | None
) -> None:
    async with Client(cluster, asynchronous=True, set_as_default=False) as client:
        await client.wait_for_workers(n_workers, timeout=timeout)


def scheduler_info(cluster: ClusterManager) -> dict[str, Any]:
    """`Client.scheduler_info` of `cluster`'s scheduler, asked now (blocking clusters;
    `TypeError` for an asynchronous one, whose callers await a client's instead)."""
    if cluster.asynchronous:
        raise TypeError(
            "an asynchronous cluster has no blocking scheduler_info: use "
            "'await client.scheduler_info()' with a client of the cluster"
        )
    with Client(cluster, set_as_default=False) as client:
        info: dict[str, Any] = client.scheduler_info()
        return info


def get_client(cluster: ClusterManager) -> Client:
    """The default client when it is connected to `cluster`, else a new (blocking)
    client of it, as dask's ``Cluster.get_client``."""
    try:
        client = default_client()
    except ValueError:
        client = None
    if client is not None and client.scheduler_address == cluster.scheduler_address:
        return client
    return Client(cluster)
