"""Placement by expected seconds: backlogs count the remaining time of running tasks."""

from __future__ import annotations

import pytest

from trident.protocol import messages as m
from trident.scheduler.placement import (
    MAX_EXTRA_PER_THREAD,
    PIPELINE_BYTES,
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

    def finish(self, key, duration, nbytes=8):
        ws = self.state.tasks[key].processing_on
        stop = self.clock.now
        return self.worker_message(
            ws.address, m.TaskFinished(key, nbytes, "int", stop - duration, stop, None)
        )

    def learn(self, prefix, seconds, nbytes=None):
        """Teach the scheduler how long tasks of `prefix` take (and how big their output is)."""
        self.state.durations.observe(prefix, seconds, nbytes)
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


MIB = 2**20


def test_output_sizes_are_learnt_per_prefix_from_finished_tasks():
    h = TimedHarness(workers=1)
    durations = h.state.durations
    assert durations.output_bytes("blk") == 0  # unknown: counts as nothing
    h.submit(spec("blk-0"), spec("blk-1"))
    h.clock.now += 0.003
    h.finish("blk-0", 0.003, nbytes=2 * MIB)
    assert durations.output_bytes("blk") == 2 * MIB
    h.clock.now += 0.003
    h.finish("blk-1", 0.003, nbytes=4 * MIB)
    assert durations.output_bytes("blk") == 3 * MIB  # weighted like durations


def test_pipelined_root_tasks_stop_at_the_output_byte_budget():
    """The x + x.T case of issue 16: 3 ms tasks that each make a large block. The window
    in seconds alone would queue ~16 of them; the byte budget queues two."""
    block = PIPELINE_BYTES // 2
    h = TimedHarness(workers=1)
    h.learn("blk", 0.003, nbytes=block)
    out = h.submit(*[spec(f"blk-{i}") for i in range(100)])
    assert run_keys(out) == ["blk-0", "blk-1", "blk-2"]
    ws = h.state.workers["w0"]
    assert ws.unstarted_root_bytes == 2 * block == PIPELINE_BYTES
    assert list(ws.running) == [h.state.tasks["blk-0"]]
    # The running task ends: the next one starts, its bytes leave the tally, and exactly
    # one more is offered in its place.
    h.clock.now += 0.003
    out = h.finish("blk-0", 0.003, nbytes=block)
    assert run_keys(out) == ["blk-3"]
    assert list(ws.running) == [h.state.tasks["blk-1"]]
    assert ws.unstarted_root_bytes == PIPELINE_BYTES


def test_the_byte_budget_scales_with_threads():
    h = TimedHarness(workers=1, nthreads=4)
    h.learn("blk", 0.003, nbytes=PIPELINE_BYTES // 2)
    out = h.submit(*[spec(f"blk-{i}") for i in range(100)])
    assert len(run_keys(out)) == 4 + 4 * 2
    assert h.state.workers["w0"].unstarted_root_bytes == 4 * PIPELINE_BYTES


def test_one_queued_root_task_per_thread_whatever_its_output_size():
    """Free threads always get work, and one task per thread queues beyond them so no
    thread waits for a round trip after each task; nothing more of that size queues."""
    h = TimedHarness(workers=2, nthreads=2)
    huge = 10 * PIPELINE_BYTES
    h.learn("huge", 0.001, nbytes=huge)
    out = h.submit(*[spec(f"huge-{i}") for i in range(20)])
    assert len(run_keys(out)) == 2 * (2 + 2)
    for ws in h.state.workers.values():
        assert len(ws.running) == 2
        assert ws.unstarted_root_bytes == 2 * huge
    h.clock.now += 0.001
    out = h.finish("huge-0", 0.001, nbytes=huge)
    assert run_keys(out) == ["huge-8"]


def test_a_large_task_at_the_head_of_the_queue_stops_offers_beyond_the_budget():
    """Priority order holds: a worker is not handed a later small task past a large one
    that does not fit."""
    h = TimedHarness(workers=1)
    h.learn("small", 0.001, nbytes=1024)
    h.learn("huge", 0.001, nbytes=2 * PIPELINE_BYTES)
    out = h.submit(
        spec("small-0", priority=3),  # a higher user priority runs first
        spec("small-1", priority=2),
        spec("huge-0", priority=1),
        spec("small-2", priority=0),
    )
    assert run_keys(out) == ["small-0", "small-1"]
    assert h.state.tasks["huge-0"].state == "queued"
    assert h.state.tasks["small-2"].state == "queued"


def test_tiny_outputs_leave_short_tasks_at_the_count_bound():
    h = TimedHarness(workers=1)
    h.learn("tiny", 1e-6, nbytes=64)
    out = h.submit(*[spec(f"tiny-{i}") for i in range(1000)])
    assert len(run_keys(out)) == 1 + MAX_EXTRA_PER_THREAD
    assert h.state.workers["w0"].unstarted_root_bytes == MAX_EXTRA_PER_THREAD * 64


def test_unstarted_root_bytes_follow_tasks_that_leave_a_worker():
    """Tasks taken off a worker's books unstarted (cancelled; its departure) leave the
    tally, and the room they free goes to the next queued tasks."""
    h = TimedHarness(workers=2)
    h.learn("blk", 0.003, nbytes=PIPELINE_BYTES // 2)
    h.submit(*[spec(f"blk-{i}") for i in range(40)])
    w0, w1 = (h.state.workers[a] for a in ("w0", "w1"))
    assert w0.unstarted_root_bytes == w1.unstarted_root_bytes == PIPELINE_BYTES
    cancelled = [ts.key for ts in list(w0.unstarted_roots)[:2]]
    h.state.handle_client_message("c", m.CancelKeys(cancelled, False))
    out = h.flush()
    assert not {ts.key for ts in w0.unstarted_roots} & set(cancelled)
    assert len(sent_to(out, "w0", m.RunTask)) == 2  # refilled to the budget
    assert w0.unstarted_root_bytes == PIPELINE_BYTES
    h.state.remove_worker("w1", "test")
    h.flush()
    assert w1.unstarted_root_bytes == 0
    assert not w1.unstarted_roots
    assert w0.unstarted_root_bytes <= PIPELINE_BYTES


def sent_to(out, address, kind):
    return [msg for msg in out.get(address, []) if isinstance(msg, kind)]


def test_a_queued_root_task_that_secedes_leaves_the_tally():
    """The scheduler presumed `blk-1` queued; the worker ran it and it seceded."""
    h = TimedHarness(workers=1)
    block = PIPELINE_BYTES // 2
    h.learn("blk", 0.003, nbytes=block)
    h.submit(*[spec(f"blk-{i}") for i in range(10)])
    ws = h.state.workers["w0"]
    assert h.state.tasks["blk-1"] in ws.unstarted_roots
    out = h.worker_message("w0", m.TaskSeceded("blk-1"))
    assert h.state.tasks["blk-1"] in ws.long_running
    assert h.state.tasks["blk-1"] not in ws.unstarted_roots
    # its bytes left the tally, so the budget takes one more in its place
    assert run_keys(out) == ["blk-3"]
    assert ws.unstarted_root_bytes == PIPELINE_BYTES
