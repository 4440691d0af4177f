"""SchedulerState with nannies: worker deaths reported and surfaced, restarts end to end."""

from __future__ import annotations

import logging

import pytest

from trident._exceptions import KilledWorker
from trident.protocol import messages as m
from trident.protocol.serialize import loads
from trident.scheduler.state import InvalidMessage
from trident.scheduler.summary import scheduler_info

from .test_state import Harness, run_keys, sent, spec


def register_nanny(h, nanny_id, worker):
    h.state.add_nanny(m.RegisterNanny(nanny_id, f"name-{worker}", "host", 100))
    out = h.flush()
    assert sent(out, nanny_id, m.NannyWelcome)
    h.state.handle_nanny_message(nanny_id, m.WorkerStarted(worker, 200, None))
    return h.flush()


def died(address, *, signal="SIGKILL", exit_code=None, reason="killed by SIGKILL"):
    return m.WorkerDied(
        address, 200, exit_code, signal, False, reason, ["line 1", "Killed"], 0.5, 1234.0
    )


def test_nannies_and_their_workers_appear_in_scheduler_info():
    h = Harness(workers=2)
    register_nanny(h, "n0", "w0")
    info = scheduler_info(h.state)
    assert info["workers"]["w0"]["nanny"] == "n0"
    assert info["workers"]["w1"]["nanny"] is None
    assert info["nannies"]["n0"]["worker"] == "w0"
    assert info["nannies"]["n0"]["starts"] == 1
    assert info["worker_deaths"] == []


def test_a_reported_death_is_logged_kept_and_drops_the_worker(caplog):
    caplog.set_level(logging.WARNING, logger="trident.scheduler")
    h = Harness(workers=2)
    register_nanny(h, "n0", "w0")
    h.submit(spec("a-1", workers=["w0"], allow_other=True))
    assert h.state.tasks["a-1"].processing_on.address == "w0"
    h.state.handle_nanny_message("n0", died("w0"))
    out = h.flush()
    assert "w0" not in h.state.workers
    assert run_keys(out) == ["a-1"]  # rerun on the other worker
    (death,) = scheduler_info(h.state)["worker_deaths"]
    assert death["signal"] == "SIGKILL"
    assert death["reason"] == "killed by SIGKILL"
    assert death["stderr"] == ["line 1", "Killed"]
    assert scheduler_info(h.state)["nannies"]["n0"]["last_death"]["address"] == "w0"
    (record,) = [r for r in caplog.records if "died" in r.getMessage()]
    assert "killed by SIGKILL" in record.getMessage()
    assert "Killed" in record.getMessage()
    # The dead worker's connection may still deliver; that is refused, not a crash.
    with pytest.raises(InvalidMessage, match="no longer registered"):
        h.state.handle_worker_message("w0", m.KeysReleased(["a-1"]))


def test_killed_worker_errors_carry_the_reported_reason():
    h = Harness(workers=1)
    h.state.allowed_failures = 0
    register_nanny(h, "n0", "w0")
    h.submit(spec("a-1"))
    h.state.handle_nanny_message("n0", died("w0", reason="out of memory: used 2 GB of 2 GB"))
    out = h.flush()
    (erred,) = sent(out, "c", m.KeyErred)
    error = loads(erred.error.exception)
    assert isinstance(error, KilledWorker)
    assert "out of memory" in str(error)


def test_a_death_after_the_connection_dropped_is_only_recorded():
    h = Harness(workers=1)
    register_nanny(h, "n0", "w0")
    h.state.remove_worker("w0")
    h.flush()
    h.state.handle_nanny_message("n0", died("w0"))
    h.flush()
    assert len(scheduler_info(h.state)["worker_deaths"]) == 1


def test_restart_clears_every_task_and_waits_for_fresh_workers():
    h = Harness(workers=2, clients=("c", "d"))
    register_nanny(h, "n0", "w0")
    register_nanny(h, "n1", "w1")
    h.submit(spec("a-1"), spec("b-1", ["a-1"]), spec("q-1"), spec("q-2"))
    h.finish("a-1")
    h.submit(spec("x-1"), client="d")
    out = h.client(m.RestartRequest(7, True))
    assert h.state.tasks == {}
    (cancelled,) = sent(out, "c", m.KeysCancelled)
    assert set(cancelled.keys) == {"a-1", "b-1", "q-1", "q-2"}
    assert "restarted" in cancelled.reason
    assert [msg.keys for msg in sent(out, "d", m.KeysCancelled)] == [["x-1"]]
    for nanny in ("n0", "n1"):
        (restart,) = sent(out, nanny, m.RestartWorker)
    assert not sent(out, "c", m.Reply)
    # The old workers go, fresh ones come; the answer waits for all of it.
    h.state.remove_worker("w0")
    h.add_worker("w2")
    h.state.handle_nanny_message("n0", m.WorkerStarted("w2", 201, restart.restart_id))
    assert not sent(h.flush(), "c", m.Reply)
    h.state.handle_nanny_message("n1", m.WorkerStarted("w3", 202, restart.restart_id))
    assert not sent(h.flush(), "c", m.Reply)  # w1 is still registered
    h.state.remove_worker("w1")
    (reply,) = sent(h.flush(), "c", m.Reply)
    assert reply.request_id == 7
    assert reply.value["restarted"] == 2
    # The cluster works afterwards, with the functions the clients defined.
    h.add_worker("w3")
    assert run_keys(h.submit(spec("a-1"))) == ["a-1"]


def test_a_start_that_answers_no_restart_does_not_finish_it():
    h = Harness(workers=1)
    register_nanny(h, "n0", "w0")
    out = h.client(m.RestartRequest(1, True))
    (restart,) = sent(out, "n0", m.RestartWorker)
    h.state.remove_worker("w0")
    h.state.handle_nanny_message("n0", m.WorkerStarted("w1", 201, None))
    assert not sent(h.flush(), "c", m.Reply)
    h.state.handle_nanny_message("n0", m.WorkerStarted("w2", 202, restart.restart_id))
    assert sent(h.flush(), "c", m.Reply)


def test_restart_without_nannies_only_clears_tasks():
    h = Harness(workers=1)
    h.submit(spec("a-1"), spec("a-2"))
    h.finish("a-1")
    out = h.client(m.RestartRequest(3, True))
    assert sent(out, "w0", m.FreeKeys)[0].keys == ["a-1"]
    assert sent(out, "w0", m.CancelTask)
    (reply,) = sent(out, "c", m.Reply)
    assert reply.value == {"restarted": 0, "workers": 1}
    assert h.state.tasks == {}


def test_a_nanny_or_client_leaving_mid_restart_is_not_waited_for():
    h = Harness(workers=1, clients=("c", "d"))
    register_nanny(h, "n0", "w0")
    h.client(m.RestartRequest(1, True))
    h.client(m.RestartRequest(2, True), client="d")
    h.state.remove_client("d")
    h.flush()
    h.state.remove_worker("w0")
    h.state.remove_nanny("n0")
    (reply,) = sent(h.flush(), "c", m.Reply)
    assert reply.request_id == 1
    assert scheduler_info(h.state)["nannies"] == {}


def test_nannies_may_send_only_nanny_messages():
    h = Harness(workers=1)
    register_nanny(h, "n0", "w0")
    with pytest.raises(InvalidMessage, match="nannies may not send"):
        h.state.handle_nanny_message("n0", m.ReleaseKeys(["a"]))
    with pytest.raises(InvalidMessage, match="already connected"):
        h.state.add_nanny(m.RegisterNanny("n0", "x", "host", 1))


def test_restart_without_waiting_answers_at_once():
    h = Harness(workers=1)
    register_nanny(h, "n0", "w0")
    out = h.client(m.RestartRequest(4, False))
    assert sent(out, "n0", m.RestartWorker)
    (reply,) = sent(out, "c", m.Reply)
    assert reply.value["restarted"] == 1
