"""The scheduler's HTTP dashboard: pages, JSON endpoints, live updates and ``/metrics``.

Started by the scheduler in its own nursery when it is given an address and
`dashboard_for` (``Scheduler(dashboard_address=..., dashboard_factory=dashboard_for)``,
as `LocalCluster` and ``trident up`` do); see `server`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..scheduler.state import SchedulerState
    from .server import Dashboard


def dashboard_for(state: SchedulerState, address: str | int, token: str | None) -> Dashboard:
    """The dashboard of a scheduler with `state`, to listen on `address`.

    `address` is ``"host:port"``, ``":port"`` or a port (see
    `server.parse_dashboard_address`). The scheduler's `DashboardFactory`.
    """
    # Imported here: schedulers without a dashboard never load the HTTP stack.
    from .server import Dashboard, parse_dashboard_address

    host, port = parse_dashboard_address(address)
    return Dashboard(state, host=host, port=port, token=token)
