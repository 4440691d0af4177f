"""`RecallTasks` (work stealing) on WorkerState: queued tasks go back, started ones stay."""

from __future__ import annotations

from trident.protocol import messages as m

from .test_state import Harness, executed, run


def test_queued_and_waiting_tasks_are_given_back_and_started_ones_kept():
    h = Harness(nthreads=1)
    _, instructions = h.handle(run("long"), run("queued"), run("waits", {"dep": ["tcp://peer"]}))
    assert executed(instructions) == ["long"]
    to_scheduler, instructions = h.handle(m.RecallTasks(7, ["queued", "waits", "long", "unknown"]))
    assert to_scheduler == [m.TasksRecalled(7, ["queued", "waits"], ["long", "unknown"])]
    assert set(h.state.tasks) == {"long", "dep"}  # the fetch in flight ends on its own
    # the thread frees up: nothing recalled runs here any more
    to_scheduler, instructions = h.finish("long")
    assert [msg.key for msg in to_scheduler] == ["long"]
    assert not executed(instructions)


def test_a_finished_task_is_kept():
    h = Harness(nthreads=1)
    h.handle(run("a"))
    h.finish("a")
    to_scheduler, _ = h.handle(m.RecallTasks(1, ["a"]))
    assert to_scheduler == [m.TasksRecalled(1, [], ["a"])]
    assert h.state.data == {"a": 1}
