"""WorkerState's seceded runs driven directly: slots given up and taken back, deadlines,
cancellation and `Reschedule` of seceded runs. Invariants are checked every step."""

from __future__ import annotations

from trident.protocol import messages as m
from trident.protocol.serialize import dumps
from trident.worker import events as ev
from trident.worker.instructions import Rejoin

from .test_state import Harness, executed, run


def rejoined(instructions):
    return [i.run_id for i in instructions if isinstance(i, Rejoin)]


def test_a_seceded_run_frees_its_slot_and_the_scheduler_hears_of_it():
    h = Harness(nthreads=1)
    h.handle(run("parent"), run("child"))
    parent = h.run_id("parent")
    assert h.secede(parent)
    to_scheduler, instructions = h.flush()
    assert to_scheduler == [m.TaskSeceded("parent")]
    assert executed(instructions) == ["child"]
    assert not h.secede(parent)  # it holds no slot any more
    h.finish("child")
    h.state.handle(ev.RunFinished(parent, 3, 8, "int", 0.0, 1.0, None, "test"))
    to_scheduler, _ = h.flush()
    assert [msg.key for msg in to_scheduler] == ["parent"]
    assert not h.state.seceded
    assert not h.state.executing


def test_rejoining_runs_take_the_next_free_slots_before_new_tasks():
    h = Harness(nthreads=1)
    h.handle(run("a"), run("b"), run("c"))
    a = h.run_id("a")
    h.secede(a)
    h.flush()  # b starts in a's place
    h.rejoin(a)
    _, instructions = h.flush()
    assert rejoined(instructions) == []  # b holds the only slot
    _, instructions = h.finish("b")
    assert rejoined(instructions) == [a]
    assert executed(instructions) == []  # c waits for a
    assert h.state.executing == {a: h.state.tasks["a"]}
    _, instructions = h.finish("a", run_id=a)
    assert executed(instructions) == ["c"]


def test_rejoin_without_secession_is_granted_at_once():
    h = Harness(nthreads=1)
    h.handle(run("a"))
    a = h.run_id("a")
    h.rejoin(a)
    _, instructions = h.flush()
    assert rejoined(instructions) == [a]


def test_a_seceded_run_that_ends_while_asking_to_rejoin_is_forgotten():
    h = Harness(nthreads=1)
    h.handle(run("a"), run("b"))
    a = h.run_id("a")
    h.secede(a)
    h.flush()
    h.rejoin(a)
    h.flush()
    h.state.handle(ev.RunFailed(a, m.ErrorInfo(dumps(None), None, "boom", ""), 0.0, 1.0, "test"))
    to_scheduler, _ = h.flush()
    assert [type(msg) for msg in to_scheduler] == [m.TaskFailed]
    _, instructions = h.finish("b")
    assert rejoined(instructions) == []


def test_a_seceded_run_misses_its_deadline_and_rejoins_to_finish_its_thread():
    h = Harness(nthreads=1)
    h.handle(run("slow", timeout=1.0), run("next"))
    slow = h.run_id("slow")
    h.secede(slow)
    h.flush()
    h.state.handle(ev.RunTimedOut(slow, m.ErrorInfo(dumps(None), None, "TimeoutError", ""), "test"))
    to_scheduler, instructions = h.flush()
    assert [type(msg) for msg in to_scheduler] == [m.TaskFailed]
    assert [i.run_id for i in instructions if hasattr(i, "run_id")] == [slow]  # Interrupt
    # The abandoned run asks for its slot back: its thread counts as busy until it returns.
    h.rejoin(slow)
    h.flush()
    _, instructions = h.finish("next")
    assert rejoined(instructions) == [slow]
    h.handle(run("after"))
    assert "after" not in [ts.key for ts in h.state.executing.values()]
    h.state.handle(ev.RunFinished(slow, 1, 8, "int", 0.0, 1.0, None, "test"))
    to_scheduler, instructions = h.flush()
    assert to_scheduler == []
    assert "slow" not in h.state.data
    assert executed(instructions) == ["after"]


def test_a_cancelled_seceded_run_does_not_tell_the_scheduler_it_seceded():
    h = Harness(nthreads=1)
    h.handle(run("a"))
    a = h.run_id("a")
    h.handle(m.CancelTask(["a"]))
    assert h.secede(a)
    to_scheduler, _ = h.flush()
    assert to_scheduler == []


def test_a_rescheduled_run_hands_its_task_back():
    h = Harness(nthreads=1)
    h.handle(run("a"), run("b"))
    h.state.handle(ev.RunRescheduled(h.run_id("a"), "test"))
    to_scheduler, instructions = h.flush()
    assert to_scheduler == [m.TaskRescheduled("a")]
    assert "a" not in h.state.tasks
    assert executed(instructions) == ["b"]
