"""The scheduler's HTTP dashboard: pages, JSON endpoints, live updates and ``/metrics``.

Started by the scheduler itself (``Scheduler(dashboard_address=...)``); see `server`.
"""
