"""WorkerState driven directly: scheduler messages and outcomes in, instructions out."""

from __future__ import annotations

from trident.protocol import messages as m
from trident.protocol.serialize import dumps
from trident.worker import events as ev
from trident.worker.instructions import Execute, Fetch, Interrupt
from trident.worker.state import WorkerState


def run(key, who_has=None, *, priority=(0, 0), inline=True, resources=None, timeout=None):
    return m.RunTask(
        key, "f", dumps(()), who_has or {}, list(priority), inline, resources, timeout, None, 0
    )


class Harness:
    def __init__(self, nthreads=1, resources=None):
        self.state = WorkerState("tcp://me", nthreads, resources)

    def handle(self, *messages):
        for msg in messages:
            self.state.handle(ev.FromScheduler(msg, "test"))
        return self.flush()

    def event(self, event):
        """Feed the state one event; return what it says to do next (checked)."""
        self.state.handle(event)
        return self.flush()

    def secede(self, run_id):
        """Secede run `run_id`; True when it held a slot and gave it up."""
        held = run_id in self.state.executing
        self.state.handle(ev.SecedeRequested(run_id, "test"))
        return held and run_id in self.state.seceded

    def rejoin(self, run_id):
        self.state.handle(ev.RejoinRequested(run_id, "test"))

    def flush(self):
        self.state.validate()
        out = self.state.flush()
        self.state.validate()
        return out

    def run_id(self, key):
        return next(
            r for r, ts in self.state.executing.items() if ts.key == key and not ts.cancelled
        )

    def finish(self, key, value=1, duration=0.5, run_id=None):
        run_id = self.run_id(key) if run_id is None else run_id
        return self.event(ev.RunFinished(run_id, value, 8, "int", 0.0, duration, None, "test"))


def executed(instructions):
    return [i.key for i in instructions if isinstance(i, Execute)]


def test_tasks_run_one_per_thread_in_priority_order():
    h = Harness(nthreads=1)
    to_scheduler, instructions = h.handle(
        run("low", priority=(0, 2)), run("high", priority=(-5, 3))
    )
    assert executed(instructions) == ["high"]
    to_scheduler, instructions = h.finish("high")
    assert [msg.key for msg in to_scheduler] == ["high"]
    assert executed(instructions) == ["low"]
    assert h.state.data == {"high": 1}


def test_short_tasks_are_handed_over_in_batches():
    h = Harness(nthreads=1)
    h.handle(run("a"))
    h.finish("a", duration=0.0001)
    h.state.mean_duration = 0.0001
    _, instructions = h.handle(*[run(f"t{i}") for i in range(20)])
    assert len(executed(instructions)) == 9  # one per thread plus the prefetch window


def test_dependencies_are_fetched_grouped_by_peer():
    h = Harness()
    _, instructions = h.handle(run("c", {"a": ["tcp://p1"], "b": ["tcp://p1"], "x": ["tcp://p2"]}))
    fetches = sorted((i.peer, sorted(i.keys)) for i in instructions if isinstance(i, Fetch))
    assert fetches == [("tcp://p1", ["a", "b"]), ("tcp://p2", ["x"])]
    h.state.handle(ev.FetchDone("tcp://p1", ["a", "b"], {"a": 1, "b": 2}, {"a": 8, "b": 8}, "test"))
    assert executed(h.flush()[1]) == []
    h.state.handle(ev.FetchDone("tcp://p2", ["x"], {"x": 3}, {"x": 8}, "test"))
    assert executed(h.flush()[1]) == ["c"]
    h.finish("c")
    assert set(h.state.data) == {"c"}  # fetched inputs dropped once used


def test_failed_fetches_try_other_holders_then_report_missing():
    h = Harness()
    h.handle(run("c", {"a": ["tcp://p1", "tcp://p2"]}))
    h.state.handle(ev.FetchFailed("tcp://p1", ["a"], "test"))
    _, instructions = h.flush()
    assert [(i.peer, i.keys) for i in instructions if isinstance(i, Fetch)] == [("tcp://p2", ["a"])]
    h.state.handle(ev.FetchDone("tcp://p2", ["a"], {}, {}, "test"))
    to_scheduler, _ = h.flush()
    (missing,) = to_scheduler
    assert isinstance(missing, m.MissingData)
    assert (missing.key, missing.dependency, sorted(missing.tried)) == (
        "c",
        "a",
        ["tcp://p1", "tcp://p2"],
    )
    assert h.state.tasks == {}


def test_local_inputs_need_no_fetch():
    h = Harness()
    h.handle(run("a"))
    h.finish("a")
    _, instructions = h.handle(run("b", {"a": ["tcp://me"]}))
    assert executed(instructions) == ["b"]


def test_failures_are_reported_and_forgotten():
    h = Harness()
    h.handle(run("a"))
    error = m.ErrorInfo(dumps(ValueError()), None, "ValueError", "tcp://me")
    h.state.handle(ev.RunFailed(h.run_id("a"), error, 0, 1, "test"))
    to_scheduler, _ = h.flush()
    assert isinstance(to_scheduler[0], m.TaskFailed)
    assert h.state.tasks == {}
    assert not h.state.executing


def test_cancelling_a_running_task_interrupts_and_discards_it():
    h = Harness()
    h.handle(run("a"), run("b"))
    first_run = h.run_id("a")
    _, instructions = h.handle(m.CancelTask(["a", "b"]))
    assert instructions == [Interrupt("a", first_run)]
    assert h.state.tasks == {}
    assert first_run in h.state.executing  # its thread slot stays busy until it returns
    to_scheduler, instructions = h.finish("a", run_id=first_run)
    assert to_scheduler == []
    assert "a" not in h.state.data


def test_a_cancelled_task_that_comes_back_runs_afresh():
    h = Harness(nthreads=2)
    h.handle(run("a"))
    first_run = h.run_id("a")
    h.handle(m.CancelTask(["a"]))
    _, instructions = h.handle(run("a"))
    [second] = [i for i in instructions if isinstance(i, Execute)]
    assert second.run_id != first_run
    to_scheduler, _ = h.finish("a", value="old", run_id=first_run)
    assert to_scheduler == []  # the abandoned run's result is discarded
    to_scheduler, _ = h.finish("a", value="new", run_id=second.run_id)
    assert [msg.key for msg in to_scheduler] == ["a"]
    assert h.state.data["a"] == "new"


def test_deadlines_fail_the_task_and_abandon_the_run():
    h = Harness()
    h.handle(run("a", timeout=1.0), run("b"))
    run_id = h.run_id("a")
    error = m.ErrorInfo(dumps(TimeoutError()), None, "TimeoutError", "tcp://me")
    h.state.handle(ev.RunTimedOut(run_id, error, "test"))
    to_scheduler, instructions = h.flush()
    assert [type(msg) for msg in to_scheduler] == [m.TaskFailed]
    assert instructions == [Interrupt("a", run_id)]
    assert executed(instructions) == []  # the slot is still held by the late run
    _, instructions = h.finish("a", run_id=run_id)
    assert executed(instructions) == ["b"]


def test_skipped_jobs_free_their_slot():
    h = Harness()
    h.handle(run("a"), run("b"))
    run_id = h.run_id("a")
    h.handle(m.CancelTask(["a"]))
    h.state.handle(ev.RunSkipped(run_id, "test"))
    assert executed(h.flush()[1]) == ["b"]


def test_free_keys_drops_data_but_keeps_inputs_of_running_tasks():
    h = Harness(nthreads=2)
    h.handle(run("a"))
    h.finish("a")
    h.handle(run("b", {"a": ["tcp://me"]}))
    h.handle(m.FreeKeys(["a"]))
    assert "a" in h.state.data  # b still reads it
    h.finish("b")
    assert "a" not in h.state.data


def test_resources_limit_concurrency():
    h = Harness(nthreads=4, resources={"GPU": 1})
    _, instructions = h.handle(
        run("g1", resources={"GPU": 1}), run("g2", resources={"GPU": 1}), run("cpu")
    )
    assert sorted(executed(instructions)) == ["cpu", "g1"]
    _, instructions = h.finish("g1")
    assert executed(instructions) == ["g2"]


def test_scattered_data_is_kept_and_unblocks_waiting_tasks():
    h = Harness()
    h.handle(run("c", {"x": ["tcp://elsewhere"]}))
    h.state.handle(ev.DataPut({"x": 5}, {"x": 8}, "test"))
    _, instructions = h.flush()
    assert executed(instructions) == ["c"]
    h.finish("c")
    assert h.state.data == {"x": 5, "c": 1}


def test_duplicate_run_messages_are_ignored_and_memory_is_reported():
    h = Harness()
    h.handle(run("a"))
    _, instructions = h.handle(run("a"))
    assert executed(instructions) == []
    h.finish("a")
    to_scheduler, _ = h.handle(run("a"))
    assert isinstance(to_scheduler[0], m.TaskFinished)


def test_an_input_nobody_has_drops_its_task_and_the_task_s_other_queued_inputs():
    h = Harness()
    h.state.handle(ev.FromScheduler(run("t-1", {"a-1": ["tcp://p"], "b-1": ["tcp://q"]}), "test"))
    # Every holder of a-1 was tried and failed; b-1 still waits for its fetch.
    h.state.tasks["a-1"].tried.add("tcp://p")
    out, instructions = h.flush()
    assert [msg.key for msg in out if isinstance(msg, m.MissingData)] == ["t-1"]
    assert h.state.tasks == {}
    assert instructions == []
