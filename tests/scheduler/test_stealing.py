"""Work stealing driven through SchedulerState: recalls, answers and their accounting."""

from __future__ import annotations

from trident.protocol import messages as m

from .test_placement import TimedHarness
from .test_state import run_keys, sent, spec


def stranded(h: TimedHarness) -> tuple[str, str]:
    """Leave one worker running an overdue task with queued tasks behind it while the
    other ran everything else and went idle; return (busy worker, idle worker)."""
    h.learn("g", 0.01)
    h.submit(*[spec(f"g-{i}") for i in range(20)])
    busy = h.state.tasks["g-0"].processing_on.address
    idle = "w1" if busy == "w0" else "w0"
    while h.on(idle):
        h.clock.now += 0.01
        ws = h.state.workers[idle]
        (running,) = ws.running
        h.finish(running.key, 0.01)
    assert h.on(busy)[0] == "g-0"
    assert len(h.on(busy)) > 1
    return busy, idle


def test_an_idle_worker_steals_the_tasks_queued_behind_an_overdue_one():
    h = TimedHarness(workers=2)
    busy, idle = stranded(h)
    queued = h.on(busy)[1:]
    # the idle worker's last finish triggered the round that recalled the queued tasks
    recalls = h.state.stealing.in_flight
    assert sorted(ts.key for ts in recalls) == sorted(queued)
    assert all(
        steal.victim.address == busy and steal.thief.address == idle for steal in recalls.values()
    )
    # until the victim answers, the tasks stay on its books
    assert h.on(busy)[1:] == queued


def test_confirmed_recalls_move_and_refused_ones_stay():
    h = TimedHarness(workers=2)
    busy, idle = stranded(h)
    request = next(iter(h.state.stealing.in_flight.values())).request
    queued = h.on(busy)[1:]
    started, dropped = queued[0], queued[1:]
    out = h.worker_message(busy, m.TasksRecalled(request, dropped, [started]))
    assert run_keys(out) == sorted(dropped)
    assert all(msg.key in dropped for msg in sent(out, idle, m.RunTask))
    assert h.on(busy) == ["g-0", started]
    assert sorted(h.on(idle)) == sorted(dropped)
    stealing = h.state.stealing
    assert stealing.moved == len(dropped)
    assert stealing.refused == 1
    assert not stealing.in_flight
    assert not stealing.incoming
    assert not stealing.outgoing
    # the moved tasks finish on the thief and reach the client once
    for key in h.on(idle):
        out = h.finish(key, 0.01)
        assert [done.key for done in sent(out, "c", m.KeyDone)] == [key]


def test_a_result_that_arrives_before_the_answer_wins_and_the_answer_is_ignored():
    h = TimedHarness(workers=2)
    busy, idle = stranded(h)
    request = next(iter(h.state.stealing.in_flight.values())).request
    queued = h.on(busy)[1:]
    key = queued[0]
    # the victim had started it after all and finished it before reading the recall
    h.finish(key, 0.001)
    assert h.state.tasks[key].state == "memory"
    out = h.worker_message(busy, m.TasksRecalled(request, queued[1:], [key]))
    assert h.state.tasks[key].state == "memory"
    assert sorted(msg.key for msg in sent(out, idle, m.RunTask)) == sorted(queued[1:])
    assert h.state.stealing.refused == 0  # the finished task's steal was already over


def test_an_answer_to_an_older_recall_moves_nothing():
    h = TimedHarness(workers=2)
    busy, _ = stranded(h)
    request = next(iter(h.state.stealing.in_flight.values())).request
    queued = h.on(busy)[1:]
    out = h.worker_message(busy, m.TasksRecalled(request - 1, queued, []))
    assert not run_keys(out)
    assert h.on(busy)[1:] == queued
    assert len(h.state.stealing.in_flight) == len(queued)


def test_a_released_task_forgets_its_recall():
    h = TimedHarness(workers=2)
    busy, _ = stranded(h)
    request = next(iter(h.state.stealing.in_flight.values())).request
    key = h.on(busy)[-1]
    h.state.handle_client_message("c", m.ReleaseKeys([key]))
    h.flush()
    assert key not in h.state.tasks
    assert all(ts.key != key for ts in h.state.stealing.in_flight)
    out = h.worker_message(busy, m.TasksRecalled(request, [key], []))
    assert not run_keys(out)


def test_a_departed_thief_leaves_the_recalled_tasks_to_be_placed_afresh():
    h = TimedHarness(workers=3)
    h.state.remove_worker("w2")
    h.flush()
    busy, idle = stranded(h)
    request = next(iter(h.state.stealing.in_flight.values())).request
    queued = h.on(busy)[1:]
    h.state.remove_worker(idle)
    h.flush()
    out = h.worker_message(busy, m.TasksRecalled(request, queued, []))
    # no other worker: they queue again and go back to the victim as it has room
    assert all(h.state.tasks[key].state in ("queued", "processing") for key in queued)
    assert not sent(out, idle, m.RunTask)


def test_a_departed_victim_ends_its_recalls():
    h = TimedHarness(workers=2)
    busy, idle = stranded(h)
    h.state.remove_worker(busy)
    h.flush()
    assert not h.state.stealing.in_flight
    assert h.state.tasks["g-0"].processing_on.address == idle


def dependents_of_data_on(h: TimedHarness, nbytes: int) -> str:
    """Put `x-0` (`nbytes`) in memory on one worker and ten tasks that read it there,
    with the first one overdue; return that worker's address."""
    h.learn("y", 0.01)
    h.submit(spec("x-0"))
    holder = h.state.tasks["x-0"].processing_on.address
    h.worker_message(holder, m.TaskFinished("x-0", nbytes, "bytes", 0.0, 0.01, None))
    h.submit(*[spec(f"y-{i}", ["x-0"]) for i in range(10)])
    other = "w1" if holder == "w0" else "w0"
    # with cheap inputs the other worker, idle then, took one; the rest stay local
    assert len(h.on(holder)) >= 9
    for key in h.on(other):
        h.finish(key, 0.01)
    h.clock.now += 0.5
    h.state.tick(0.0)  # the liveness clock is separate and stays put
    return holder


def test_stealing_weighs_transfer_bytes_against_the_wait():
    small = TimedHarness(workers=2)
    holder = dependents_of_data_on(small, 1000)
    out = small.flush()
    # cheap inputs: the queue was balanced when the other worker went idle, and more
    # moves now that the running task is overdue
    assert len(sent(out, holder, m.RecallTasks)) == 1
    assert len(small.state.stealing.in_flight) == len(small.on(holder)) - 1

    large = TimedHarness(workers=2)
    holder = dependents_of_data_on(large, 10**9)  # 10 s to move: waiting is cheaper
    out = large.flush()
    assert not sent(out, holder, m.RecallTasks)
    assert not large.state.stealing.in_flight


def test_no_steal_while_the_busy_worker_drains_within_the_window():
    h = TimedHarness(workers=2)
    h.learn("q", 0.001)
    h.submit(*[spec(f"q-{i}") for i in range(8)])
    busy = h.state.tasks["q-0"].processing_on.address
    idle = "w1" if busy == "w0" else "w0"
    while h.on(idle):
        out = h.finish(next(iter(h.state.workers[idle].running)).key, 0.001)
        assert not any(sent(out, w, m.RecallTasks) for w in ("w0", "w1"))
    assert not h.state.stealing.in_flight
