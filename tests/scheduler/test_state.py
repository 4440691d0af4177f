"""SchedulerState driven directly: events in, messages out, invariants checked each step."""

from __future__ import annotations

import pytest

from trident._exceptions import DependencyError, FutureLostError, KilledWorker
from trident.protocol import messages as m
from trident.protocol.serialize import KEPT_FUNCTION_MAX_BYTES, dumps, loads
from trident.scheduler.placement import UNKNOWN_DURATION
from trident.scheduler.state import InvalidMessage, SchedulerState
from trident.scheduler.summary import scheduler_info

FUNCTION = dumps(len)


def spec(
    key,
    deps=(),
    *,
    priority=0,
    retries=0,
    workers=None,
    allow_other=False,
    resources=None,
    function="f",
    timeout=None,
    actor=None,
):
    return m.TaskSpec(
        key,
        function,
        dumps(key),
        list(deps),
        priority,
        retries,
        workers,
        allow_other,
        resources,
        timeout,
        actor,
    )


class Harness:
    """A scheduler state with workers ``w0..`` and a client ``c``; checks invariants."""

    def __init__(self, workers=2, nthreads=1, clients=("c",)):
        self.state = SchedulerState("s")
        for i in range(workers):
            self.add_worker(f"w{i}", nthreads)
        for client in clients:
            self.state.add_client(client, client)
        self.flush()

    def add_worker(self, address, nthreads=1, resources=None):
        self.state.add_worker(
            m.WorkerInfo(address, f"name-{address}", nthreads, 0, resources or {})
        )

    def flush(self):
        self.state.validate()
        out = self.state.flush()
        self.state.validate()
        return out

    def submit(self, *specs, client="c"):
        self.state.handle_client_message(client, m.UpdateGraph({"f": FUNCTION}, list(specs)))
        return self.flush()

    def client(self, message, client="c"):
        self.state.handle_client_message(client, message)
        return self.flush()

    def finish(self, key, nbytes=8, value=None, duration=0.1):
        ts = self.state.tasks[key]
        worker = ts.processing_on.address
        self.state.handle_worker_message(
            worker, m.TaskFinished(key, nbytes, "int", 100.0, 100.0 + duration, value)
        )
        return self.flush()

    def fail(self, key, text="ValueError: boom"):
        ts = self.state.tasks[key]
        error = m.ErrorInfo(dumps(ValueError("boom")), None, text, ts.processing_on.address)
        self.state.handle_worker_message(
            ts.processing_on.address, m.TaskFailed(key, error, 1.0, 2.0)
        )
        return self.flush()

    def states(self):
        return {key: ts.state for key, ts in self.state.tasks.items()}


def sent(out, peer, kind):
    return [msg for msg in out.get(peer, []) if isinstance(msg, kind)]


def run_keys(out):
    return sorted(msg.key for msgs in out.values() for msg in msgs if isinstance(msg, m.RunTask))


def test_root_tasks_are_queued_until_workers_have_room():
    h = Harness(workers=2)
    out = h.submit(*[spec(f"t-{i}") for i in range(10)])
    assert len(run_keys(out)) == 2  # unknown duration: one task per thread
    assert list(h.states().values()).count("queued") == 8
    assert len(sent(out, "w0", m.DefineFunction)) == 1


def test_finishing_reports_to_the_client_and_refills_the_worker():
    h = Harness(workers=1)
    h.submit(spec("a-1"), spec("a-2"))
    out = h.finish("a-1", value=dumps(42))
    (done,) = sent(out, "c", m.KeyDone)
    assert done.key == "a-1"
    assert loads(done.value) == 42
    assert run_keys(out) == ["a-2"]
    assert not sent(out, "w0", m.DefineFunction)  # the worker knows the function


def test_short_tasks_are_pipelined_to_workers():
    h = Harness(workers=1)
    h.submit(*[spec(f"a-{i}") for i in range(1000)])
    out = h.finish(next(k for k, s in h.states().items() if s == "processing"), duration=0.0001)
    assert len(run_keys(out)) > 100


def test_dependencies_wait_and_carry_who_has():
    h = Harness()
    h.submit(spec("a-1"), spec("b-1"), spec("c-1", ["a-1", "b-1"]))
    assert h.states()["c-1"] == "waiting"
    h.finish("a-1")
    assert h.states()["c-1"] == "waiting"
    out = h.finish("b-1", nbytes=10**9)
    (run,) = [msg for msgs in out.values() for msg in msgs if isinstance(msg, m.RunTask)]
    assert run.key == "c-1"
    assert set(run.who_has) == {"a-1", "b-1"}
    holder_of_b = run.who_has["b-1"][0]
    assert h.state.tasks["c-1"].processing_on.address == holder_of_b  # big input stays put


def test_released_keys_free_data_and_are_forgotten():
    h = Harness()
    h.submit(spec("a-1"))
    h.finish("a-1")
    out = h.client(m.ReleaseKeys(["a-1"]))
    assert [msg.keys for msg in sent(out, "w0", m.FreeKeys) + sent(out, "w1", m.FreeKeys)] == [
        ["a-1"]
    ]
    assert h.state.tasks == {}
    assert h.state.functions == {"f": FUNCTION}  # still defined by the connected client


def test_intermediate_data_is_freed_once_dependents_finish():
    h = Harness()
    h.submit(spec("a-1"), spec("b-1", ["a-1"]))
    h.client(m.ReleaseKeys(["a-1"]))
    assert h.states() == {"a-1": "processing", "b-1": "waiting"}
    h.finish("a-1")
    out = h.finish("b-1")
    assert sum(len(sent(out, w, m.FreeKeys)) for w in ("w0", "w1")) == 1
    assert h.states() == {"a-1": "released", "b-1": "memory"}  # lineage kept for b
    h.client(m.ReleaseKeys(["b-1"]))
    assert h.state.tasks == {}


def test_releasing_unfinished_work_cancels_it_on_the_worker():
    h = Harness(workers=1)
    h.submit(spec("a-1"), spec("b-1", ["a-1"]))
    out = h.client(m.ReleaseKeys(["a-1", "b-1"]))
    assert sent(out, "w0", m.CancelTask)[0].keys == ["a-1"]
    assert h.state.tasks == {}


def test_errors_reach_the_client_and_flow_to_dependents():
    h = Harness()
    h.submit(spec("a-1"), spec("b-1", ["a-1"]), spec("c-1", ["b-1"]))
    out = h.fail("a-1")
    erred = {msg.key for msg in sent(out, "c", m.KeyErred)}
    assert erred == {"a-1", "b-1", "c-1"}
    assert set(h.states().values()) == {"erred"}
    # Submitting more work on top of an erred key errs at once.
    out = h.submit(spec("d-1", ["c-1"]))
    assert [msg.key for msg in sent(out, "c", m.KeyErred)] == ["d-1"]


def test_retries_rerun_failed_tasks():
    h = Harness()
    h.submit(spec("a-1", retries=1))
    out = h.fail("a-1")
    assert run_keys(out) == ["a-1"]
    assert not sent(out, "c", m.KeyErred)
    out = h.fail("a-1")
    assert [msg.key for msg in sent(out, "c", m.KeyErred)] == ["a-1"]


def test_cancel_stops_the_task_and_its_dependents():
    h = Harness(workers=1)
    h.submit(spec("a-1"), spec("b-1", ["a-1"]))
    out = h.client(m.CancelKeys(["a-1"], False))
    assert sent(out, "w0", m.CancelTask)[0].keys == ["a-1"]
    assert [msg.keys for msg in sent(out, "c", m.KeysCancelled)] == [["b-1"]]
    assert h.state.tasks == {}


def test_cancel_without_force_leaves_other_clients_alone():
    h = Harness(clients=("c", "d"))
    h.submit(spec("a-1"))
    h.submit(spec("a-1"), client="d")
    h.client(m.CancelKeys(["a-1"], False))
    assert h.states() == {"a-1": "processing"}
    out = h.finish("a-1")
    assert [msg.key for msg in sent(out, "d", m.KeyDone)] == ["a-1"]
    assert not sent(out, "c", m.KeyDone)
    out = h.client(m.CancelKeys(["a-1"], True), client="d")
    assert h.state.tasks == {}


def test_force_cancel_reaches_every_client():
    h = Harness(clients=("c", "d"))
    h.submit(spec("a-1"))
    h.submit(spec("a-1"), client="d")
    out = h.client(m.CancelKeys(["a-1"], True))
    assert [msg.keys for msg in sent(out, "d", m.KeysCancelled)] == [["a-1"]]
    assert not sent(out, "c", m.KeysCancelled)  # the asking client already knows
    assert h.state.tasks == {}


def test_identical_keys_run_once_and_late_wanters_get_the_outcome():
    h = Harness(clients=("c", "d"))
    out = h.submit(spec("a-1"), spec("a-1"))
    assert run_keys(out) == ["a-1"]
    h.finish("a-1")
    out = h.submit(spec("a-1"), client="d")
    assert [msg.key for msg in sent(out, "d", m.KeyDone)] == ["a-1"]
    assert run_keys(out) == []


def test_lost_worker_reruns_its_tasks_and_recomputes_lost_data():
    h = Harness(workers=2)
    h.submit(spec("a-1"), spec("b-1"))
    h.finish("a-1")
    holder = next(iter(h.state.tasks["a-1"].who_has)).address
    running_b = h.state.tasks["b-1"].processing_on.address
    h.state.remove_worker(holder)
    out = h.flush()
    assert [msg.keys for msg in sent(out, "c", m.KeysLost)] == [["a-1"]]
    assert [msg.removed for msg in sent(out, "c", m.WorkersChanged)] == [[holder]]
    if running_b == holder:
        assert h.states()["b-1"] in ("processing", "queued")
    assert h.states()["a-1"] in ("queued", "processing")


def test_lineage_recomputes_released_inputs():
    h = Harness(workers=2)
    h.submit(spec("a-1"), spec("b-1", ["a-1"]))
    h.client(m.ReleaseKeys(["a-1"]))
    h.finish("a-1")
    h.finish("b-1")
    assert h.states()["a-1"] == "released"
    holder = next(iter(h.state.tasks["b-1"].who_has)).address
    h.state.remove_worker(holder)
    h.flush()
    assert h.states() == {"a-1": "processing", "b-1": "waiting"}
    h.finish("a-1")
    h.finish("b-1")
    assert h.states()["b-1"] == "memory"


def test_a_task_that_kills_too_many_workers_fails_with_killed_worker():
    h = Harness(workers=0)
    h.state.allowed_failures = 1
    h.submit(spec("bad-1"))
    for i in range(2):
        h.add_worker(f"x{i}")
        h.flush()
        h.state.remove_worker(f"x{i}", "killed by signal 9")
        out = h.flush()
    (erred,) = sent(out, "c", m.KeyErred)
    error = loads(erred.error.exception)
    assert isinstance(error, KilledWorker)
    assert error.workers == ["x0", "x1"]
    assert "signal 9" in str(error)


def test_restrictions_and_unknown_workers():
    h = Harness(workers=2)
    out = h.submit(spec("r-1", workers=["w1"]), spec("r-2", workers=["name-w0"]))
    assert [msg.key for msg in sent(out, "w1", m.RunTask)] == ["r-1"]
    assert [msg.key for msg in sent(out, "w0", m.RunTask)] == ["r-2"]
    h.submit(spec("r-3", workers=["nowhere"]))
    assert h.states()["r-3"] == "no-worker"
    h.add_worker("nowhere")
    out = h.flush()
    assert [msg.key for msg in sent(out, "nowhere", m.RunTask)] == ["r-3"]
    out = h.submit(spec("r-4", workers=["absent"], allow_other=True))
    assert run_keys(out) == ["r-4"]


def test_resources_restrict_placement():
    h = Harness(workers=1)
    h.submit(spec("g-1", resources={"GPU": 1}))
    assert h.states()["g-1"] == "no-worker"
    h.add_worker("gpu", resources={"GPU": 2})
    out = h.flush()
    assert [msg.key for msg in sent(out, "gpu", m.RunTask)] == ["g-1"]
    assert sent(out, "gpu", m.RunTask)[0].resources == {"GPU": 1}


def test_fire_and_forget_runs_after_release_then_cleans_up():
    h = Harness()
    h.submit(spec("a-1"))
    h.client(m.FireAndForget(["a-1"]))
    h.client(m.ReleaseKeys(["a-1"]))
    assert h.states() == {"a-1": "processing"}
    out = h.finish("a-1")
    assert not sent(out, "c", m.KeyDone)
    assert h.state.tasks == {}


def test_scattered_data_feeds_tasks_and_cannot_be_recomputed():
    h = Harness()
    h.client(m.RegisterScattered({"x-1": ["w1"]}, {"x-1": 100}, {"x-1": "int"}))
    out = h.submit(spec("a-1", ["x-1"]))
    assert [msg.key for msg in sent(out, "w1", m.RunTask)] == ["a-1"]
    h.finish("a-1")
    h.state.remove_worker("w1")
    out = h.flush()
    erred = {msg.key: loads(msg.error.exception) for msg in sent(out, "c", m.KeyErred)}
    assert isinstance(erred["x-1"], FutureLostError)


def test_unknown_dependencies_fail_the_task():
    h = Harness()
    out = h.submit(spec("a-1", ["ghost-1"]))
    (erred,) = sent(out, "c", m.KeyErred)
    assert isinstance(loads(erred.error.exception), DependencyError)


def test_priority_orders_queued_tasks():
    h = Harness(workers=1)
    out = h.submit(spec("low-1", priority=0), spec("high-1", priority=10))
    assert run_keys(out) == ["high-1"]


def test_missing_data_reported_by_a_worker_triggers_recompute():
    h = Harness(workers=2)
    h.submit(spec("a-1"))
    h.finish("a-1")
    holder = next(iter(h.state.tasks["a-1"].who_has)).address
    other = "w1" if holder == "w0" else "w0"
    h.submit(spec("b-1", ["a-1"], workers=[other]))
    h.state.handle_worker_message(other, m.MissingData("b-1", "a-1", [holder]))
    h.flush()
    assert h.states() == {"a-1": "processing", "b-1": "waiting"}


def test_functions_are_sent_once_per_worker_and_forgotten_when_unused():
    h = Harness(workers=1)
    h.submit(spec("a-1"))
    h.finish("a-1")
    out = h.submit(spec("a-2"))
    assert not sent(out, "w0", m.DefineFunction)
    h.finish("a-2")
    h.state.remove_client("c")
    out = h.flush()
    assert sent(out, "w0", m.ForgetFunctions)[0].tokens == ["f"]
    assert h.state.functions == {}
    assert h.state.tasks == {}


LARGE_FUNCTION = dumps(b"x" * (KEPT_FUNCTION_MAX_BYTES + 1))


def test_large_functions_are_kept_only_while_tasks_use_them():
    h = Harness(workers=1)
    update = m.UpdateGraph({"big": LARGE_FUNCTION}, [spec("a-1", function="big")])
    out = h.client(update)
    assert sent(out, "w0", m.DefineFunction)[0].token == "big"
    out = h.finish("a-1")
    out = h.client(m.ReleaseKeys(["a-1"]))
    # The client is still connected, yet nothing uses the function: it is forgotten.
    assert sent(out, "w0", m.ForgetFunctions)[0].tokens == ["big"]
    assert "big" not in h.state.functions
    # A client sends a large function with every batch of tasks: it is defined again.
    out = h.client(m.UpdateGraph({"big": LARGE_FUNCTION}, [spec("a-2", function="big")]))
    assert sent(out, "w0", m.DefineFunction)[0].token == "big"


def test_a_large_function_sent_with_known_tasks_only_is_not_kept():
    h = Harness(workers=1)
    h.submit(spec("a-1"))
    h.client(m.UpdateGraph({"big": LARGE_FUNCTION}, [spec("a-1", function="big")]))
    assert set(h.state.functions) == {"f"}  # small: kept while the client is connected


def test_who_has_and_info_replies():
    h = Harness()
    h.submit(spec("a-1"))
    h.finish("a-1")
    out = h.client(m.WhoHasRequest(5, ["a-1", "zz"]))
    (reply,) = sent(out, "c", m.Reply)
    assert reply.request_id == 5
    assert len(reply.value["a-1"]) == 1
    assert reply.value["zz"] == []
    out = h.client(m.InfoRequest(6))
    info = sent(out, "c", m.Reply)[0].value
    assert set(info["workers"]) == {"w0", "w1"}
    assert info["tasks"] == 1


def test_want_keys_reports_current_outcomes():
    h = Harness(clients=("c", "d"))
    h.submit(spec("a-1"))
    h.finish("a-1")
    out = h.client(m.WantKeys(["a-1", "ghost"]), client="d")
    assert [msg.key for msg in sent(out, "d", m.KeyDone)] == ["a-1"]
    assert [msg.key for msg in sent(out, "d", m.KeyErred)] == ["ghost"]


def test_roles_may_only_send_their_own_messages():
    h = Harness()
    with pytest.raises(InvalidMessage):
        h.state.handle_client_message("c", m.TaskFinished("a", 1, "int", 0, 0, None))
    with pytest.raises(InvalidMessage):
        h.state.handle_worker_message("w0", m.ReleaseKeys(["a"]))
    with pytest.raises(InvalidMessage, match="undefined function"):
        h.state.handle_client_message("c", m.UpdateGraph({}, [spec("z-1", function="nope")]))


def test_stale_completions_are_ignored_and_their_data_freed():
    h = Harness(workers=1)
    h.submit(spec("a-1"))
    h.client(m.ReleaseKeys(["a-1"]))
    h.state.handle_worker_message("w0", m.TaskFinished("a-1", 8, "int", 0, 1, None))
    out = h.flush()
    assert sent(out, "w0", m.FreeKeys)[0].keys == ["a-1"]


def test_no_workers_then_one_joins():
    h = Harness(workers=0)
    h.submit(spec("a-1"), spec("b-1", ["a-1"]))
    assert h.states() == {"a-1": "queued", "b-1": "waiting"}
    h.add_worker("late")
    out = h.flush()
    assert run_keys(out) == ["a-1"]


def test_unknown_duration_default_is_used_for_occupancy():
    h = Harness(workers=1)
    h.submit(spec("a-1"))
    assert h.state.workers["w0"].occupancy == pytest.approx(UNKNOWN_DURATION)
    h.finish("a-1", duration=0.25)
    assert h.state.workers["w0"].occupancy == 0
    assert h.state.durations.get("a") == pytest.approx(0.25)


def test_releasing_many_keys_sends_one_free_message_per_worker():
    h = Harness(workers=2)
    keys = [f"a-{i}" for i in range(50)]
    h.submit(*[spec(k) for k in keys])
    while any(s != "memory" for s in h.states().values()):
        for key, state in list(h.states().items()):
            if state == "processing":
                h.finish(key, duration=0.0001)
    out = h.client(m.ReleaseKeys(keys))
    frees = [msg for w in ("w0", "w1") for msg in sent(out, w, m.FreeKeys)]
    assert len(frees) <= 2
    assert sorted(k for msg in frees for k in msg.keys) == sorted(keys)


# --- heartbeats, activity, output forwarding, logs ----------------------------------


def heartbeat(memory=1000, executing=1, ready=2, stored=64):
    return m.WorkerHeartbeat(memory, 4000, 12.5, executing, ready, stored, 0)


def test_heartbeats_are_stored_with_the_time_they_arrived():
    now = [100.0]
    h = Harness()
    h.state.clock = lambda: now[0]
    now[0] = 105.0
    h.state.handle_worker_message("w0", heartbeat(memory=2048))
    assert h.flush() == {}
    ws = h.state.workers["w0"]
    assert ws.heartbeat.memory == 2048
    assert ws.last_seen == 105.0
    info = scheduler_info(h.state)["workers"]["w0"]
    assert info["metrics"]["memory"] == 2048
    assert info["last_seen"] == 105.0
    assert scheduler_info(h.state)["workers"]["w1"]["metrics"]["memory"] == 0  # none yet


def test_finished_and_failed_runs_are_recorded_in_the_task_stream():
    h = Harness(workers=1)
    h.submit(spec("a-1"), spec("b-1", retries=1))
    h.finish("a-1", duration=0.5)
    h.fail("b-1")  # retried
    h.fail("b-1", text="ValueError: for good")
    events, cursor = h.state.activity.events_since(0)
    assert [(e.key, e.prefix, e.worker, e.status) for e in events] == [
        ("a-1", "a", "w0", "ok"),
        ("b-1", "b", "w0", "error"),
        ("b-1", "b", "w0", "error"),
    ]
    assert events[0].stop - events[0].start == pytest.approx(0.5)
    assert cursor == 3
    assert h.state.activity.events_since(cursor) == ([], 3)
    assert h.state.activity.finished == {"a": 1}
    assert h.state.activity.failed == {"b": 2}
    errors, _ = h.state.activity.errors_since(0)
    assert [(e.key, e.text) for e in errors] == [("b-1", "ValueError: for good")]


def test_the_task_stream_is_a_bounded_ring_buffer():
    from trident.scheduler.activity import Activity

    activity = Activity(stream_capacity=3)
    for i in range(10):
        activity.task_ran(f"t-{i}", "t", "w", i, i + 1, "ok")
    events, cursor = activity.events_since(5)
    assert [e.key for e in events] == ["t-7", "t-8", "t-9"]
    assert cursor == 10
    assert [e.key for e in activity.events_since(9)[0]] == ["t-9"]
    assert [e.key for e in activity.events_since(0, limit=1)[0]] == ["t-9"]


def test_killed_workers_are_recorded_as_errors():
    h = Harness(workers=1)
    h.state.allowed_failures = 0
    h.submit(spec("a-1"))
    h.state.remove_worker("w0")
    h.flush()
    (error,) = h.state.activity.errors_since(0)[0]
    assert error.key == "a-1"
    assert "KilledWorker" in error.text


def test_workers_capture_output_while_a_client_forwards_it():
    h = Harness(workers=2, clients=("c", "d"))
    out = h.client(m.ForwardOutput(True))
    assert sent(out, "w0", m.CaptureOutput) == [m.CaptureOutput(True)]
    assert sent(out, "w1", m.CaptureOutput) == [m.CaptureOutput(True)]
    out = h.client(m.ForwardOutput(True), client="d")
    assert not sent(out, "w0", m.CaptureOutput)  # already capturing
    h.add_worker("w2")
    assert sent(h.flush(), "w2", m.CaptureOutput) == [m.CaptureOutput(True)]
    h.client(m.ForwardOutput(False))
    h.state.remove_client("d")
    out = h.flush()
    assert sent(out, "w0", m.CaptureOutput) == [m.CaptureOutput(False)]


def test_task_output_goes_to_the_forwarding_clients_that_want_the_task():
    h = Harness(workers=1, clients=("c", "d", "e"))
    h.client(m.ForwardOutput(True))
    h.client(m.ForwardOutput(True), client="e")
    h.submit(spec("a-1"))
    h.submit(spec("a-1"), client="d")  # wants it, does not forward
    entries = [
        m.OutputEntry("a-1", "stdout", "hello", 0, "", 1.0),
        m.OutputEntry("gone-1", "stdout", "lost", 0, "", 1.0),
    ]
    h.state.handle_worker_message("w0", m.TaskOutput("forged", entries))
    out = h.flush()
    (forwarded,) = sent(out, "c", m.TaskOutput)
    assert forwarded.worker == "w0"
    assert [e.text for e in forwarded.entries] == ["hello"]
    assert not sent(out, "d", m.TaskOutput)
    assert not sent(out, "e", m.TaskOutput)


def test_clients_learn_the_dashboard_address_with_the_welcome():
    state = SchedulerState("s")
    state.services["dashboard"] = "127.0.0.1:8787"
    state.add_client("c")
    welcome, services = state.flush()["c"]
    assert isinstance(welcome, m.ClientWelcome)
    assert services == m.SchedulerServices("127.0.0.1:8787")


def test_scheduler_logs_are_answered_from_its_buffer():
    import logging

    h = Harness()
    h.state.logs.claim_current_context()
    record = logging.LogRecord(
        "trident.scheduler", logging.WARNING, "", 0, "disk %s", ("full",), None
    )
    h.state.logs.handle(record)
    (reply,) = sent(h.client(m.LogsRequest(7, 10)), "c", m.Reply)
    assert reply.request_id == 7
    ((level, text),) = reply.value
    assert level == "WARNING"
    assert text.endswith("trident.scheduler - WARNING - disk full")
