"""The local cluster a `Client` may start or be handed, as the client sees it.

``Client()`` with no address starts a `LocalCluster` that it owns, and
``Client(cluster)`` connects to one. The cluster package sits above the client, so the
client knows a cluster only through `LocalClusterLike` and builds one with the class that
`trident.cluster.local` registers when it is imported (`register_local_cluster`); the
`trident` namespace imports it together with `Client`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._loop_thread import LoopThread
    from ..security import Security


@runtime_checkable
class LocalClusterLike(Protocol):
    """What a client uses of a local cluster (see the module docstring)."""

    security: Security

    @property
    def token(self) -> str | None: ...

    @property
    def scheduler_address(self) -> str: ...

    @property
    def loop_thread(self) -> LoopThread | None: ...

    def _address_for_client(self, same_loop: bool | None = None) -> str: ...

    async def _start_async(self) -> None: ...

    async def _close_async(self) -> None: ...

    def close(self, timeout: float = 10) -> Any: ...


_local_cluster: type[LocalClusterLike] | None = None


def register_local_cluster(cls: type[LocalClusterLike]) -> None:
    """Make `cls` the cluster that ``Client()`` with no address starts."""
    global _local_cluster
    _local_cluster = cls


def start_local_cluster(**kwargs: Any) -> LocalClusterLike:
    """A new local cluster with `kwargs` (`LocalCluster`'s arguments).

    Raises `RuntimeError` when no cluster class is registered (``trident.cluster.local``
    was never imported).
    """
    if _local_cluster is None:
        raise RuntimeError("Client() without an address needs trident.cluster.local imported")
    return _local_cluster(**kwargs)
