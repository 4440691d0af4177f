"""``/metrics``: the scheduler's numbers in the Prometheus text format.

prometheus_client writes the format; `SchedulerCollector` reads the state at scrape
time, so nothing is counted twice and nothing runs between scrapes. Each scheduler has
its own registry (several schedulers may share a process in tests).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..scheduler.records import TASK_STATES
from ..scheduler.state import SchedulerState
from ..scheduler.summary import task_counts, worker_metrics
from .monitor import LoopMonitor

#: The content type of `render`'s output (text format 0.0.4, which every scraper reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class SchedulerCollector(Collector):
    """Yields the scheduler's metrics from its state and loop monitor."""

    def __init__(self, state: SchedulerState, monitor: LoopMonitor):
        self.state = state
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        state = self.state
        tasks = GaugeMetricFamily(
            "trident_tasks", "Tasks the scheduler knows, by state", labels=["state"]
        )
        counts = task_counts(state.tasks.values())
        for task_state in TASK_STATES:
            tasks.add_metric([task_state], counts.get(task_state, 0))
        yield tasks
        yield CounterMetricFamily(
            "trident_transitions", "Task state transitions", value=state.transitions
        )
        yield GaugeMetricFamily(
            "trident_transitions_per_second",
            "Task state transitions per second, over the last second",
            value=self.monitor.transitions_per_second,
        )
        finished = CounterMetricFamily(
            "trident_tasks_completed", "Task runs reported by workers", labels=["outcome"]
        )
        finished.add_metric(["finished"], state.activity.finished_total)
        finished.add_metric(["failed"], state.activity.failed_total)
        yield finished
        yield GaugeMetricFamily("trident_workers", "Connected workers", value=len(state.workers))
        yield GaugeMetricFamily("trident_clients", "Connected clients", value=len(state.clients))
        yield GaugeMetricFamily(
            "trident_threads",
            "Task threads over all workers",
            value=sum(ws.nthreads for ws in state.workers.values()),
        )
        yield GaugeMetricFamily(
            "trident_event_loop_lag_seconds",
            "Worst lag of the scheduler's event loop over the last few seconds",
            value=self.monitor.lag,
        )
        stored = GaugeMetricFamily(
            "trident_worker_stored_bytes", "Bytes of data held by each worker", labels=["worker"]
        )
        spilled = GaugeMetricFamily(
            "trident_worker_spilled_bytes",
            "Bytes spilled to disk by each worker",
            labels=["worker"],
        )
        memory = GaugeMetricFamily(
            "trident_worker_memory_bytes", "Resident memory of each worker", labels=["worker"]
        )
        limit = GaugeMetricFamily(
            "trident_worker_memory_limit_bytes", "Memory limit of each worker", labels=["worker"]
        )
        cpu = GaugeMetricFamily(
            "trident_worker_cpu_percent",
            "CPU use of each worker (percent of one core)",
            labels=["worker"],
        )
        running = GaugeMetricFamily(
            "trident_worker_tasks_processing", "Tasks assigned to each worker", labels=["worker"]
        )
        total_stored = total_spilled = 0
        for ws in state.workers.values():
            metrics = worker_metrics(ws)
            labels = [ws.address]
            stored.add_metric(labels, metrics["stored"])
            spilled.add_metric(labels, metrics["spilled"])
            memory.add_metric(labels, metrics["memory"])
            limit.add_metric(labels, metrics["memory_limit"])
            cpu.add_metric(labels, metrics["cpu"])
            running.add_metric(labels, len(ws.processing) + len(ws.long_running))
            total_stored += metrics["stored"]
            total_spilled += metrics["spilled"]
        yield GaugeMetricFamily(
            "trident_stored_bytes", "Bytes of data held over all workers", value=total_stored
        )
        yield GaugeMetricFamily(
            "trident_spilled_bytes", "Bytes spilled to disk over all workers", value=total_spilled
        )
        yield from (stored, spilled, memory, limit, cpu, running)


def make_registry(state: SchedulerState, monitor: LoopMonitor) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SchedulerCollector(state, monitor))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in the Prometheus text format."""
    return generate_latest(registry)
