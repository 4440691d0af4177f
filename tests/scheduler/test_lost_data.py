"""Unrecomputable data of a worker that may come back, through SchedulerState: awaited
for a grace period, given back when the worker re-registers holding it, lost otherwise."""

from __future__ import annotations

from trident._exceptions import FutureLostError
from trident.protocol import messages as m
from trident.protocol.serialize import loads

from .test_nannies import died, register_nanny
from .test_state import Harness, run_keys, sent, spec


def scattered_on_w0() -> Harness:
    """Two workers and a client holding scattered ``x-1`` on w0."""
    h = Harness(workers=2)
    h.client(m.RegisterScattered({"x-1": ["w0"]}, {"x-1": 100}, {"x-1": "int"}))
    return h


def silence_w0(h: Harness, now: float = 61.0):
    """w0 says nothing past the worker timeout (60 s): the tick removes it."""
    h.state.liveness.heard_from("w1", now)
    h.state.tick(now)
    out = h.flush()
    assert "w0" not in h.state.workers
    return out


def erred(out) -> dict[str, BaseException]:
    return {msg.key: loads(msg.error.exception) for msg in sent(out, "c", m.KeyErred)}


def test_data_of_a_silent_worker_is_awaited_and_given_back_when_it_returns():
    h = scattered_on_w0()
    out = silence_w0(h)
    assert [msg.keys for msg in sent(out, "c", m.KeysLost)] == [["x-1"]]
    assert not sent(out, "c", m.KeyErred)
    assert h.states()["x-1"] == "released"
    # a task submitted meanwhile waits for the data instead of failing
    out = h.submit(spec("a-1", ["x-1"]))
    assert not sent(out, "c", m.KeyErred)
    assert h.states()["a-1"] == "waiting"
    # the worker comes back holding the key
    h.state.add_worker(m.WorkerInfo("w0", "name-w0", 1, 0, {}), {"x-1": 100, "junk-1": 8})
    out = h.flush()
    assert h.states()["x-1"] == "memory"
    assert [ws.address for ws in h.state.tasks["x-1"].who_has] == ["w0"]
    assert [msg.key for msg in sent(out, "c", m.KeyDone)] == ["x-1"]
    assert run_keys(out) == ["a-1"]
    assert [msg.keys for msg in sent(out, "w0", m.FreeKeys)] == [["junk-1"]]
    assert h.state.lost_data.restored == 1
    assert not h.state.lost_data.parked


def test_data_not_back_within_the_grace_period_is_lost():
    h = scattered_on_w0()
    silence_w0(h, 61.0)
    h.state.liveness.heard_from("w1", 80.0)
    h.state.tick(80.0)
    assert not erred(h.flush())
    h.state.liveness.heard_from("w1", 92.0)
    h.state.tick(92.0)  # 30 s of grace after the removal
    assert isinstance(erred(h.flush())["x-1"], FutureLostError)
    # a worker registering later with the key is told to drop it
    h.state.add_worker(m.WorkerInfo("w0", "name-w0", 1, 0, {}), {"x-1": 100})
    out = h.flush()
    assert [msg.keys for msg in sent(out, "w0", m.FreeKeys)] == [["x-1"]]
    assert h.states()["x-1"] == "erred"


def test_a_worker_that_returns_without_the_data_ends_the_wait():
    h = scattered_on_w0()
    silence_w0(h)
    h.state.add_worker(m.WorkerInfo("w0", "name-w0", 1, 0, {}), {})
    assert isinstance(erred(h.flush())["x-1"], FutureLostError)


def test_a_worker_reported_dead_by_its_nanny_loses_its_data_at_once():
    h = scattered_on_w0()
    register_nanny(h, "n0", "w0")
    h.state.remove_worker("w0", await_report=True)  # its connection dropped
    assert not erred(h.flush())
    h.state.handle_nanny_message("n0", died("w0"))
    assert isinstance(erred(h.flush())["x-1"], FutureLostError)


def test_a_closed_connection_without_a_nanny_loses_the_data_at_once():
    h = scattered_on_w0()
    h.state.remove_worker("w0")
    assert isinstance(erred(h.flush())["x-1"], FutureLostError)
    assert not h.state.lost_data.parked


def test_parked_data_nobody_wants_any_more_is_forgotten():
    h = scattered_on_w0()
    silence_w0(h)
    h.client(m.ReleaseKeys(["x-1"]))
    assert "x-1" not in h.state.tasks
    h.state.add_worker(m.WorkerInfo("w0", "name-w0", 1, 0, {}), {"x-1": 100})
    out = h.flush()
    assert [msg.keys for msg in sent(out, "w0", m.FreeKeys)] == [["x-1"]]
    h.state.tick(100.0)
    assert not h.state.lost_data.parked
