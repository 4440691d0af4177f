"""SchedulerState's bounded event log and the scheduler's side of a cluster dump."""

from __future__ import annotations

from trident.protocol import messages as m
from trident.scheduler.state import SchedulerState

from .test_state import Harness, sent, spec


def test_events_and_flushes_are_logged_under_increasing_stimulus_ids():
    h = Harness(workers=1)
    h.submit(spec("a"))
    h.finish("a")
    log = list(h.state.log)
    ids = [entry[0] for entry in log]
    assert ids == sorted(ids)
    events = [(entry[1], entry[2], entry[3]) for entry in log if entry[1] != "flush"]
    assert ("UpdateGraph", "c", None) in events
    assert ("TaskFinished", "w0", "a") in events
    finished = next(e for e in log if e[1] == "TaskFinished")
    flush = log[log.index(finished) + 1]
    assert flush[0] == finished[0]
    assert flush[1] == "flush"
    assert flush[2] >= 1  # transitions since the flush before


def test_the_log_keeps_only_its_last_entries():
    state = SchedulerState("s", log_length=4)
    state.add_worker(m.WorkerInfo("w0", "w0", 1, 0, {}))
    state.add_client("c", "c")
    for _ in range(10):
        state.handle_client_message("c", m.Heartbeat())
    assert len(state.log) == 4
    assert [entry[1] for entry in state.log] == ["Heartbeat"] * 4


def test_a_dump_waits_for_every_worker_and_goes_on_without_one_that_left():
    h = Harness(workers=2)
    h.submit(spec("a"))
    out = h.client(m.DumpClusterState(7, []))
    asks = {peer: sent(out, peer, m.DumpWorkerState) for peer in ("w0", "w1")}
    assert all(len(a) == 1 for a in asks.values())
    dump_id = asks["w0"][0].dump
    h.state.handle_worker_message("w0", m.WorkerStateDumped(dump_id, {"tasks": {}}))
    assert sent(h.flush(), "c", m.Reply) == []
    h.state.remove_worker("w1")
    [reply] = sent(h.flush(), "c", m.Reply)
    assert reply.request_id == 7
    assert set(reply.value["workers"]) == {"w0"}
    assert "a" in reply.value["scheduler"]["tasks"]
    assert reply.value["scheduler"]["log"]
