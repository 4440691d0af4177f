"""Stalled workers (silent, not yet removed) through SchedulerState: their queued tasks
leave, they get no work until heard from again, and recalls to them settle."""

from __future__ import annotations

from trident.protocol import messages as m
from trident.scheduler.stalls import SETTLED

from .test_placement import TimedHarness
from .test_state import sent, spec
from .test_stealing import stranded


def tick(h: TimedHarness, now: float, *alive: str):
    """Advance the scheduler's tick clock to `now`, having heard from `alive` just then."""
    for address in alive:
        h.state.liveness.heard_from(address, now)
    h.state.tick(now)
    return h.flush()


def test_a_stalled_workers_queued_tasks_leave_and_it_gets_no_more():
    h = TimedHarness(workers=2)
    h.learn("g", 0.01)
    h.submit(*[spec(f"g-{i}") for i in range(20)])
    stuck = h.on("w0")
    assert len(stuck) > 1
    out = tick(h, 6.0, "w1")  # w0 silent for longer than worker_stall (5 s)
    running = stuck[0]
    assert h.on("w0") == [running]  # what it started stays
    (recall,) = sent(out, "w0", m.RecallTasks)
    assert recall.request == SETTLED
    assert sorted(recall.keys) == sorted(stuck[1:])
    assert h.state.stalls.moved == len(stuck) - 1
    for key in stuck[1:]:
        assert h.state.tasks[key].state in ("queued", "processing")
        assert h.state.tasks[key].processing_on is not h.state.workers["w0"]
    # everything else runs on w1; w0 is offered nothing, even with a free thread
    h.finish(running, 0.01)
    while h.on("w1"):
        h.clock.now += 0.01
        (current,) = h.state.workers["w1"].running
        out = h.finish(current.key, 0.01)
        assert not sent(out, "w0", m.RunTask)
    assert all(ts.state == "memory" for ts in h.state.tasks.values())
    # its late answer to the settled recall changes nothing
    h.worker_message("w0", m.TasksRecalled(SETTLED, recall.keys, []))
    assert all(ts.state == "memory" for ts in h.state.tasks.values())


def test_a_stalled_worker_heard_from_again_gets_work():
    h = TimedHarness(workers=2)
    h.learn("g", 0.01)
    tick(h, 6.0, "w1")
    assert h.state.workers["w0"] in h.state.stalls.stalled
    assert h.state.workers["w0"] not in h.state.idle
    out = h.submit(*[spec(f"g-{i}") for i in range(20)])
    assert not sent(out, "w0", m.RunTask)
    out = tick(h, 7.0, "w0", "w1")
    assert not h.state.stalls.stalled
    assert sent(out, "w0", m.RunTask)  # tasks still queued at the scheduler


def test_a_recall_from_a_victim_that_stalls_moves_its_tasks_to_the_thief():
    h = TimedHarness(workers=2)
    busy, idle = stranded(h)
    queued = h.on(busy)[1:]
    assert h.state.stealing.in_flight  # recalled, never answered
    out = tick(h, 6.0, idle)
    assert h.on(busy) == ["g-0"]
    assert sorted(h.on(idle)) == sorted(queued)
    assert sorted(msg.key for msg in sent(out, idle, m.RunTask)) == sorted(queued)
    assert not h.state.stealing.in_flight
    assert not h.state.stealing.incoming
    assert not h.state.stealing.outgoing


def test_a_ready_task_avoids_a_stalled_holder_of_its_input():
    h = TimedHarness(workers=2)
    h.learn("a", 0.01)
    h.learn("b", 0.01)
    h.submit(spec("a-1"))
    holder = h.state.tasks["a-1"].processing_on.address
    other = "w1" if holder == "w0" else "w0"
    h.finish("a-1", 0.01)
    tick(h, 6.0, other)
    out = h.submit(spec("b-1", ["a-1"]))
    assert [msg.key for msg in sent(out, other, m.RunTask)] == ["b-1"]
