"""SchedulerState's clock: heartbeats out, silent peers removed, clients away and back."""

from __future__ import annotations

from trident._exceptions import SchedulerLostError
from trident.protocol import messages as m
from trident.protocol.serialize import loads
from trident.scheduler.liveness import LivenessSettings
from trident.scheduler.state import SchedulerState

from .test_state import Harness, run_keys, sent, spec

SETTINGS = LivenessSettings(
    heartbeat_interval=1.0, worker_timeout=10.0, client_timeout=5.0, client_grace=20.0
)


class Clocked(Harness):
    """A harness whose state has short timeouts and a clock moved by `tick`."""

    def __init__(self, workers=2, clients=("c",)):
        self.state = SchedulerState("s", liveness=SETTINGS)
        for i in range(workers):
            self.add_worker(f"w{i}")
        for client in clients:
            self.state.add_client(client, client)
        self.flush()

    def tick(self, now):
        gone = self.state.tick(now)
        return gone, self.flush()


def test_every_connected_peer_gets_a_heartbeat_each_tick():
    h = Clocked()
    gone, out = h.tick(1.0)
    assert gone == []
    for peer in ("w0", "w1", "c"):
        assert out[peer] == [m.Heartbeat()]


def test_a_silent_worker_is_removed_and_its_task_rerun_elsewhere():
    h = Clocked()
    h.submit(spec("a-1", workers=["w0"], allow_other=True))
    h.tick(5.0)
    h.state.liveness.heard_from("w1", 9.0)
    h.state.liveness.heard_from("c", 9.0)
    gone, out = h.tick(10.5)
    assert gone == ["w0"]
    assert "w0" not in h.state.workers
    assert run_keys(out) == ["a-1"]
    assert sent(out, "w1", m.RunTask)
    assert sent(out, "c", m.WorkersChanged)[0].removed == ["w0"]
    assert h.state.deaths.reasons["w0"] == "it sent no heartbeat for 10 s"


def test_anything_heard_keeps_a_peer_alive():
    h = Clocked(workers=1)
    for now in range(1, 40):
        h.state.liveness.heard_from("w0", float(now))
        h.state.liveness.heard_from("c", float(now))
        gone, _ = h.tick(float(now))
        assert gone == []
    assert "w0" in h.state.workers
    assert "c" in h.state.clients


def test_a_silent_client_is_away_then_released_after_its_grace_period():
    h = Clocked(workers=1)
    h.submit(spec("a-1"), spec("b-1", ["a-1"]))
    h.finish("a-1")
    gone, _ = h.tick(6.0)
    assert gone == ["c"]
    assert h.state.liveness.is_away("c")
    assert set(h.state.tasks) == {"a-1", "b-1"}  # its work goes on meanwhile
    h.state.liveness.heard_from("w0", 19.0)
    _, out = h.tick(20.0)
    assert "c" not in out  # no heartbeats to a client that is away
    h.tick(26.5)
    assert "c" not in h.state.clients
    assert h.state.tasks == {}  # released for good


def test_a_client_that_resumes_keeps_its_futures_and_hears_what_it_missed():
    h = Clocked(workers=1)
    h.submit(spec("a-1"), spec("b-1"), spec("c-1"), spec("e-1"))
    h.finish("a-1")
    h.state.client_disconnected("c")
    h.flush()
    h.fail("b-1")
    h.finish("c-1")
    h.state.remove_worker("w0")  # c-1's data is lost and recomputed meanwhile
    h.add_worker("w1")
    h.flush()
    h.state.resume_client(m.ResumeClient("c", "c", ["a-1", "b-1", "c-1", "d-1"]))
    out = h.flush()
    assert not h.state.liveness.is_away("c")
    kinds = [type(msg) for msg in out["c"]]
    assert kinds[:2] == [m.ClientWelcome, m.SchedulerServices]
    assert out["c"][-1] == m.ClientResumed(True)
    assert [msg.key for msg in sent(out, "c", m.KeyErred)] == ["b-1", "d-1"]
    (unknown,) = [msg for msg in sent(out, "c", m.KeyErred) if msg.key == "d-1"]
    assert isinstance(loads(unknown.error.exception), SchedulerLostError)
    assert [msg.keys for msg in sent(out, "c", m.KeysLost)] == [["a-1"], ["c-1"]]
    # e-1 was dropped by the client while it was away: released on resume.
    assert "e-1" not in h.state.tasks


def test_a_resumed_client_hears_about_finished_keys():
    h = Clocked(workers=1)
    h.submit(spec("a-1"))
    h.state.client_disconnected("c")
    h.flush()
    h.finish("a-1")
    h.state.resume_client(m.ResumeClient("c", "c", ["a-1"]))
    out = h.flush()
    (done,) = sent(out, "c", m.KeyDone)
    assert done.key == "a-1"
    assert done.value is None


def test_a_client_unknown_to_the_scheduler_resumes_afresh():
    h = Clocked(workers=1, clients=("d",))
    h.submit(spec("a-1"), client="d")
    h.state.resume_client(m.ResumeClient("c", "c", ["a-1", "x-1"]))
    out = h.flush()
    assert out["c"][-1] == m.ClientResumed(False)
    assert [msg.key for msg in sent(out, "c", m.KeyErred)] == ["x-1"]
    assert h.state.clients["c"] in h.state.tasks["a-1"].who_wants  # shared key, adopted


def test_a_client_away_loses_its_pending_requests_but_keeps_its_leases():
    h = Clocked(workers=1, clients=("c", "d"))
    h.client(m.AcquireLeases(1, "lock", ["x"], 1, 1, "lease-c", None, None))
    h.client(m.AcquireLeases(2, "lock", ["y"], 1, 1, "lease-c2", None, None))
    h.client(m.AcquireLeases(3, "lock", ["y"], 1, 1, "lease-d", None, None), client="d")
    h.client(m.AcquireLeases(4, "lock", ["x"], 1, 1, "lease-d2", None, None), client="d")
    h.state.client_disconnected("c")
    out = h.flush()
    assert not sent(out, "d", m.Reply)  # c still holds x
    h.state.resume_client(m.ResumeClient("c", "c", []))
    h.flush()
    out = h.client(m.ReleaseLease("lock", "lease-c"))
    assert [msg.request_id for msg in sent(out, "d", m.Reply)] == [4]


def test_a_held_worker_death_verdict_waits_for_the_nanny_report():
    from .test_nannies import died, register_nanny

    h = Clocked(workers=1)
    h.state.allowed_failures = 0
    register_nanny(h, "n0", "w0")
    h.submit(spec("a-1"))
    h.state.remove_worker("w0", await_report=True)
    out = h.flush()
    assert not sent(out, "c", m.KeyErred)
    assert h.states() == {"a-1": "processing"}
    h.state.handle_nanny_message("n0", died("w0", reason="killed by SIGSEGV"))
    out = h.flush()
    (erred,) = sent(out, "c", m.KeyErred)
    error = loads(erred.error.exception)
    assert error.workers == ["w0"]
    assert error.causes == ["killed by SIGSEGV"]
    assert "w0 (killed by SIGSEGV)" in str(error)


def test_a_held_verdict_without_a_report_is_settled_by_the_clock():
    from .test_nannies import register_nanny

    h = Clocked(workers=1)
    h.state.allowed_failures = 0
    register_nanny(h, "n0", "w0")
    h.submit(spec("a-1"))
    h.tick(1.0)
    h.state.remove_worker("w0", await_report=True)
    h.flush()
    _, out = h.tick(2.0)
    assert not sent(out, "c", m.KeyErred)
    _, out = h.tick(3.5)
    (erred,) = sent(out, "c", m.KeyErred)
    assert loads(erred.error.exception).causes == ["its connection closed"]


def test_a_held_task_released_meanwhile_is_just_forgotten():
    from .test_nannies import died, register_nanny

    h = Clocked(workers=1)
    h.state.allowed_failures = 0
    register_nanny(h, "n0", "w0")
    h.submit(spec("a-1"))
    h.state.remove_worker("w0", await_report=True)
    h.flush()
    h.client(m.ReleaseKeys(["a-1"]))
    assert h.state.tasks == {}
    h.state.handle_nanny_message("n0", died("w0"))
    assert not sent(h.flush(), "c", m.KeyErred)


def test_killed_worker_names_every_death_and_its_cause():
    from .test_nannies import died, register_nanny

    h = Clocked(workers=0)
    h.state.allowed_failures = 1
    h.submit(spec("bad-1"))
    causes = ["killed by SIGSEGV", "exited with code 3"]
    for i, cause in enumerate(causes):
        h.add_worker(f"x{i}")
        register_nanny(h, f"n{i}", f"x{i}")
        h.state.remove_worker(f"x{i}", await_report=True)
        h.flush()
        h.state.handle_nanny_message(f"n{i}", died(f"x{i}", reason=cause))
        out = h.flush()
    (erred,) = sent(out, "c", m.KeyErred)
    error = loads(erred.error.exception)
    assert error.workers == ["x0", "x1"]
    assert error.causes == causes
    assert str(error) == (
        "task 'bad-1' was running when 2 workers died: "
        "x0 (killed by SIGSEGV), x1 (exited with code 3)"
    )
