"""Placement by expected seconds: backlogs count the remaining time of running tasks."""

from __future__ import annotations

import pytest

from trident.protocol import messages as m
from trident.scheduler.placement import (
    PIPELINE_SECONDS,
    UNKNOWN_DURATION,
    DurationEstimates,
    backlog,
    remaining,
)
from trident.scheduler.state import SchedulerState

from .test_state import FUNCTION, run_keys, spec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedHarness:
    """A scheduler with a fake clock, single-thread workers ``w0..`` and a client ``c``."""

    def __init__(self, workers: int = 2, nthreads: int = 1):
        self.clock = Clock()
        self.state = SchedulerState("s", clock=self.clock)
        for i in range(workers):
            self.state.add_worker(m.WorkerInfo(f"w{i}", f"w{i}", nthreads, 0, {}))
        self.state.add_client("c", "c")
        self.flush()

    def flush(self):
        self.state.validate()
        out = self.state.flush()
        self.state.validate()
        return out

    def submit(self, *specs):
        self.state.handle_client_message("c", m.UpdateGraph({"f": FUNCTION}, list(specs)))
        return self.flush()

    def worker_message(self, address, message):
        self.state.handle_worker_message(address, message)
        return self.flush()

    def finish(self, key, duration):
        ws = self.state.tasks[key].processing_on
        stop = self.clock.now
        return self.worker_message(
            ws.address, m.TaskFinished(key, 8, "int", stop - duration, stop, None)
        )

    def learn(self, prefix, seconds):
        """Teach the scheduler how long tasks of `prefix` take."""
        self.state.durations.observe(prefix, seconds)
        self.state.durations.take_stale()

    def on(self, address):
        return [ts.key for ts in self.state.workers[address].processing]


def test_remaining_time_of_a_running_task():
    assert remaining(1.5, 0.5) == pytest.approx(1.0)
    # outlived its estimate: expected to run about as long again
    assert remaining(0.005, 0.2) == pytest.approx(0.2)


def test_backlog_counts_queued_estimates_and_remaining_running_time():
    h = TimedHarness(workers=1)
    h.learn("slow", 1.5)
    h.learn("fast", 0.001)
    h.submit(spec("slow-1"), spec("fast-1"))
    ws = h.state.workers["w0"]
    assert h.on("w0") == ["slow-1"]  # 1.5 s running: no more offered
    assert backlog(ws, h.clock.now) == pytest.approx(1.5)
    h.clock.now += 1.0
    assert backlog(ws, h.clock.now) == pytest.approx(0.5)


def test_a_short_task_goes_to_the_idle_worker_not_behind_a_long_one():
    """The 1.5 s task + short tasks case of issue 16: nothing queues behind the long task."""
    h = TimedHarness(workers=2)
    h.learn("slow", 1.5)
    h.learn("fast", 0.001)
    h.submit(spec("slow-1"))
    (long_worker,) = [a for a in ("w0", "w1") if h.on(a)]
    idle_worker = "w1" if long_worker == "w0" else "w0"
    h.clock.now += 0.2
    out = h.submit(*[spec(f"fast-{i}") for i in range(5)])
    assert h.on(long_worker) == ["slow-1"]
    assert sorted(h.on(idle_worker)) == [f"fast-{i}" for i in range(5)]
    assert not any(isinstance(msg, m.RunTask) for msg in out.get(long_worker, []))


def test_the_long_task_is_counted_even_once_it_outlives_its_estimate():
    h = TimedHarness(workers=2)
    h.learn("g", 0.01)
    h.submit(spec("g-0"), spec("g-1"))  # one each: g-0 will turn out to be slow
    h.clock.now += 0.01
    h.finish("g-1", 0.01)  # w1 is done and idle again
    h.clock.now += 0.5
    slow_worker = h.state.tasks["g-0"].processing_on.address
    h.submit(*[spec(f"g-{i}") for i in range(2, 6)])
    assert h.on(slow_worker) == ["g-0"]


def test_pipelining_fills_each_thread_up_to_the_window_in_seconds():
    h = TimedHarness(workers=1)
    h.learn("t", 0.005)
    out = h.submit(*[spec(f"t-{i}") for i in range(100)])
    # the running task plus enough queued ones to cover the window (one more where
    # rounding leaves the sum a hair under it)
    full = round(PIPELINE_SECONDS / 0.005)
    assert full <= len(run_keys(out)) <= full + 1
    ws = h.state.workers["w0"]
    assert PIPELINE_SECONDS - 1e-9 <= backlog(ws, h.clock.now) <= PIPELINE_SECONDS + 0.005


def test_unknown_durations_give_one_task_per_thread():
    h = TimedHarness(workers=2, nthreads=2)
    out = h.submit(*[spec(f"u-{i}") for i in range(10)])
    assert len(run_keys(out)) == 4
    assert h.state.workers["w0"].occupancy == pytest.approx(2 * UNKNOWN_DURATION)


def test_estimates_are_rebooked_once_the_first_durations_are_known():
    h = TimedHarness(workers=1)
    h.submit(*[spec(f"n-{i}") for i in range(3)])
    ws = h.state.workers["w0"]
    assert ws.processing == {h.state.tasks["n-0"]: UNKNOWN_DURATION}
    h.clock.now += 0.001
    out = h.finish("n-0", 0.001)
    # the queued tasks now come at their learnt estimate, and the booked ones follow it
    assert run_keys(out) == ["n-1", "n-2"]
    assert all(estimate == pytest.approx(0.001) for estimate in ws.processing.values())
    assert ws.occupancy == pytest.approx(0.002)


def test_duration_estimates_mark_prefixes_that_moved_far():
    durations = DurationEstimates()
    durations.observe("a", 0.4)  # close to the default booking: not stale
    assert not durations.stale
    durations.observe("a", 0.01)  # 0.205: more than twice smaller than 0.5
    assert durations.take_stale() == {"a"}
    durations.observe("a", 0.2)
    assert not durations.stale
