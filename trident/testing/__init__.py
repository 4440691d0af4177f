"""Testing helpers for projects that use trident (and for trident's own tests).

Installing trident registers a pytest plugin (`trident.testing.plugin`) with fixtures:

* ``trident_cluster``: an in-process cluster in the test's trio loop (async fixture).
* ``trident_client``: an asynchronous `Client` connected to it (async fixture).
* ``trident_blocking_client``: a blocking `Client` on an in-process cluster (sync).
* ``trident_cluster_options``: override it to change workers, threads or resources.

Async fixtures run under pytest-trio (``@pytest.mark.trio`` or ``trio_mode``) or under
anyio's own plugin (``@pytest.mark.anyio`` with an ``anyio_backend`` fixture); under
neither, a test using them fails with a message saying so (see docs/testing.md).
"""

from .cluster import in_process_cluster as in_process_cluster

__all__ = ["in_process_cluster"]
