"""SchedulerState's cluster administration driven directly: queries, seceded and
rescheduled tasks, copying and moving data, retiring workers, uploads and remote calls.
Invariants are checked after every step (`Harness.flush`)."""

from __future__ import annotations

from trident.dashboard.snapshot import workers as dashboard_workers
from trident.protocol import messages as m
from trident.protocol.serialize import dumps, loads

from .test_state import Harness, spec


def reply(out, client="c"):
    (answer,) = [msg for msg in out.get(client, []) if isinstance(msg, (m.Reply, m.RunResults))]
    return answer


def finish_on(h, key, worker, nbytes=8):
    h.state.handle_worker_message(worker, m.TaskFinished(key, nbytes, "int", 1.0, 2.0, None))
    return h.flush()


def acquired(h, worker, operation, nbytes, missing=()):
    h.state.handle_worker_message(worker, m.ReplicasAcquired(operation, nbytes, list(missing)))
    return h.flush()


def holders(h, key):
    return sorted(ws.address for ws in h.state.tasks[key].who_has)


# --- queries -------------------------------------------------------------------------


def test_has_what_processing_and_nbytes():
    h = Harness(workers=2, nthreads=2)
    h.submit(spec("inc-1"), spec("inc-2"), spec("dec-1"))
    on = {key: ts.processing_on.address for key, ts in h.state.tasks.items()}
    processing = reply(h.client(m.ProcessingRequest(1, None))).value
    assert {key: worker for worker, keys in processing.items() for key in keys} == on
    finish_on(h, "inc-1", on["inc-1"], nbytes=10)
    finish_on(h, "inc-2", on["inc-2"], nbytes=20)
    has_what = reply(h.client(m.HasWhatRequest(2, ["name-w0"]))).value
    assert list(has_what) == ["w0"]
    everywhere = reply(h.client(m.HasWhatRequest(3, None))).value
    assert sorted(key for keys in everywhere.values() for key in keys) == ["inc-1", "inc-2"]
    assert reply(h.client(m.NbytesRequest(4, None, False))).value == {"inc-1": 10, "inc-2": 20}
    assert reply(h.client(m.NbytesRequest(5, ["inc-2", "nope"], False))).value == {"inc-2": 20}
    assert reply(h.client(m.NbytesRequest(6, None, True))).value == {"inc": 30}


def test_versions_of_the_scheduler():
    h = Harness(workers=0)
    versions = reply(h.client(m.VersionsRequest(1, ["pytest"]))).value
    assert versions["packages"]["trident"]
    assert versions["packages"]["pytest"]
    assert versions["host"]["python"]
    # Names that cannot be installed are simply absent (a fuzzed request sent "").
    odd = reply(h.client(m.VersionsRequest(2, ["", "no-such-package-here"]))).value
    assert odd["packages"][""] is None
    assert odd["packages"]["no-such-package-here"] is None


# --- seceded and rescheduled tasks -----------------------------------------------------


def test_a_seceded_task_frees_its_slot_for_queued_root_tasks():
    h = Harness(workers=1, nthreads=1)
    h.submit(spec("parent"), spec("child"))
    assert h.states() == {"parent": "processing", "child": "queued"}
    h.state.handle_worker_message("w0", m.TaskSeceded("parent"))
    out = h.flush()
    assert [msg.key for msg in out["w0"] if isinstance(msg, m.RunTask)] == ["child"]
    ws = h.state.workers["w0"]
    assert list(ws.long_running) == [h.state.tasks["parent"]]
    assert reply(h.client(m.ProcessingRequest(1, None))).value == {"w0": ["child", "parent"]}
    (row,) = dashboard_workers(h.state, 0.0)
    assert row["processing"] == 2  # the dashboard counts the seceded task too
    finish_on(h, "child", "w0")
    finish_on(h, "parent", "w0")
    assert not ws.long_running
    assert not ws.processing
    assert h.states() == {"parent": "memory", "child": "memory"}


def test_seceded_tasks_rerun_when_their_worker_dies_and_are_cancelled_cleanly():
    h = Harness(workers=2, nthreads=1)
    h.submit(spec("parent"))
    first = h.state.tasks["parent"].processing_on.address
    h.state.handle_worker_message(first, m.TaskSeceded("parent"))
    h.flush()
    h.state.remove_worker(first)
    h.flush()
    second = h.state.tasks["parent"].processing_on.address
    assert second != first
    assert h.state.tasks["parent"].suspicious == 1
    h.state.handle_worker_message(second, m.TaskSeceded("parent"))
    h.flush()
    out = h.client(m.CancelKeys(["parent"], False))
    assert any(isinstance(msg, m.CancelTask) for msg in out[second])
    assert not h.state.workers[second].long_running


def test_a_rescheduled_task_is_placed_again():
    h = Harness(workers=1, nthreads=1)
    h.submit(spec("a"))
    h.state.handle_worker_message("w0", m.TaskRescheduled("a"))
    out = h.flush()
    assert [msg.key for msg in out["w0"] if isinstance(msg, m.RunTask)] == ["a"]
    assert h.state.tasks["a"].retries == 0
    assert h.state.tasks["a"].suspicious == 0
    finish_on(h, "a", "w0")
    assert h.states() == {"a": "memory"}


# --- replicate, rebalance ------------------------------------------------------------


def test_replicate_copies_then_trims_copies():
    h = Harness(workers=3)
    h.submit(spec("x"))
    first = h.state.tasks["x"].processing_on.address
    finish_on(h, "x", first)
    out = h.client(m.ReplicateRequest(1, ["x"], None, None))
    requests = {w: msgs[0] for w, msgs in out.items() if w.startswith("w")}
    assert sorted(requests) == sorted({"w0", "w1", "w2"} - {first})
    for worker, request in requests.items():
        assert request.who_has == {"x": [first]}
        done = acquired(h, worker, request.operation, {"x": 8})
    assert reply(done).value is None
    assert holders(h, "x") == ["w0", "w1", "w2"]
    out = h.client(m.ReplicateRequest(2, ["x"], 1, None))
    assert reply(out).value is None
    assert len(holders(h, "x")) == 1
    freed = [w for w, msgs in out.items() if any(isinstance(msg, m.FreeKeys) for msg in msgs)]
    assert len(freed) == 2


def test_a_copy_of_a_key_released_meanwhile_is_dropped():
    h = Harness(workers=2)
    h.submit(spec("x"))
    first = h.state.tasks["x"].processing_on.address
    other = "w1" if first == "w0" else "w0"
    finish_on(h, "x", first)
    (request,) = h.client(m.ReplicateRequest(1, ["x"], 2, None))[other]
    h.client(m.ReleaseKeys(["x"]))
    out = acquired(h, other, request.operation, {"x": 8})
    assert m.FreeKeys(["x"]) in out[other]
    assert reply(out).value is None
    assert "x" not in h.state.tasks


def test_rebalance_moves_data_and_drops_the_source_copy_after_the_target_has_it():
    h = Harness(workers=2)
    h.submit(*[spec(f"k{i}", workers=["w0"]) for i in range(4)])
    for i in range(4):
        finish_on(h, f"k{i}", "w0", nbytes=100)
    out = h.client(m.RebalanceRequest(1, None, None))
    (request,) = out["w1"]
    assert len(request.who_has) == 2
    assert all(sources == ["w0"] for sources in request.who_has.values())
    moved = dict.fromkeys(request.who_has, 100)
    out = acquired(h, "w1", request.operation, moved)
    assert reply(out).value is None
    assert sorted(out["w0"][0].keys) == sorted(moved)
    assert h.state.workers["w0"].nbytes == h.state.workers["w1"].nbytes == 200


def test_actors_are_neither_copied_nor_moved():
    h = Harness(workers=2)
    h.submit(spec("actor", workers=["w0"], actor=m.ActorOptions(0, 1)))
    finish_on(h, "actor", "w0")
    assert reply(h.client(m.ReplicateRequest(1, ["actor"], None, None))).value is None
    assert reply(h.client(m.RebalanceRequest(2, None, None))).value is None
    assert holders(h, "actor") == ["w0"]


# --- retiring workers ------------------------------------------------------------------


def test_retiring_copies_unique_data_then_removes_the_worker():
    h = Harness(workers=2, nthreads=1)
    h.submit(spec("x", workers=["w0"]), spec("both", workers=["w0"]), spec("busy", workers=["w0"]))
    finish_on(h, "x", "w0")
    finish_on(h, "both", "w0")
    h.state.tasks["both"].add_holder(h.state.workers["w1"])
    h.state.workers["w1"].has_what[h.state.tasks["both"]] = None
    out = h.client(m.RetireWorkersRequest(1, ["w0"], False))
    (request,) = out["w1"]
    assert request.who_has == {"x": ["w0"]}
    out = acquired(h, "w1", request.operation, {"x": 8})
    assert list(reply(out).value) == ["w0"]
    assert m.CloseWorker("retired") in out["w0"]
    assert list(h.state.workers) == ["w1"]
    assert holders(h, "x") == ["w1"]
    busy = h.state.tasks["busy"]
    assert busy.state == "no-worker"
    assert busy.suspicious == 0
    # Messages still in flight from the retired worker are dropped quietly.
    h.state.handle_worker_message("w0", m.WorkerHeartbeat(0, 0, 0.0, 0, 0, 0, 0))
    h.state.remove_worker("w0")
    h.flush()
    assert not h.state.data_movement.retired


def test_retiring_a_worker_with_an_actor_follows_the_actor_restart_rules():
    h = Harness(workers=2)
    h.submit(
        spec("keeps", workers=["w0"], allow_other=True, actor=m.ActorOptions(1, 1)),
        spec("dies", workers=["w0"], allow_other=True, actor=m.ActorOptions(0, 1)),
    )
    finish_on(h, "keeps", "w0")
    finish_on(h, "dies", "w0")
    out = h.client(m.RetireWorkersRequest(1, ["w0"], False))
    assert list(reply(out).value) == ["w0"]
    assert "w1" not in out or not any(isinstance(msg, m.AcquireReplicas) for msg in out["w1"])
    assert h.state.tasks["keeps"].state == "processing"
    assert h.state.tasks["keeps"].restarts == 1
    erred = [msg for msg in out["c"] if isinstance(msg, m.KeyErred)]
    assert [msg.key for msg in erred] == ["dies"]


def test_retiring_every_worker_with_unique_data_is_refused():
    h = Harness(workers=1)
    h.submit(spec("x"))
    finish_on(h, "x", "w0")
    answer = reply(h.client(m.RetireWorkersRequest(1, None, False)))
    assert answer.value == {}  # the cluster cannot spare its only worker
    answer = reply(h.client(m.RetireWorkersRequest(2, ["w0"], False)))
    assert "nowhere to go" in answer.error
    assert list(h.state.workers) == ["w0"]


def test_retire_picks_idle_workers_and_a_receiver_that_leaves_ends_it():
    h = Harness(workers=3)
    h.submit(spec("x", workers=["w0"]), spec("y", workers=["w1"]))
    finish_on(h, "x", "w0", nbytes=1000)
    out = h.client(m.RetireWorkersRequest(1, None, True))
    (request,) = out["w1"]  # the busy w1 stays and receives x
    assert request.who_has == {"x": ["w0"]}
    assert sorted(h.state.data_movement.retiring) == ["w0", "w2"]
    out = acquired(h, "w1", request.operation, {"x": 1000})
    assert sorted(reply(out).value) == ["w0", "w2"]
    assert list(h.state.workers) == ["w1"]
    h.add_worker("w3")
    h.flush()
    out = h.client(m.RetireWorkersRequest(2, ["w1"], False))
    (request,) = out["w3"]
    h.state.remove_worker("w3")
    out = h.flush()
    # With no receiver left the retirement ends without removing anybody.
    assert "nowhere to go" in reply(out).error
    assert list(h.state.workers) == ["w1"]
    assert not h.state.data_movement.retiring


def test_retire_closes_the_nanny_when_asked():
    h = Harness(workers=2)
    h.state.add_nanny(m.RegisterNanny("n0", "a", "host", 1))
    h.state.handle_nanny_message("n0", m.WorkerStarted("w0", 2, None))
    h.flush()
    out = h.client(m.RetireWorkersRequest(1, ["w0"], True))
    assert list(reply(out).value) == ["w0"]
    assert out["n0"] == [m.CloseWorker("retired")]


def test_a_worker_whose_lifetime_is_over_is_retired_with_its_nanny():
    h = Harness(workers=2)
    h.state.add_nanny(m.RegisterNanny("n0", "a", "host", 1))
    h.state.handle_nanny_message("n0", m.WorkerStarted("w0", 2, None))
    h.submit(spec("x", workers=["w0"]))
    finish_on(h, "x", "w0")
    h.state.handle_worker_message("w0", m.WorkerRetiring("lifetime of 60 s"))
    out = h.flush()
    (request,) = out["w1"]
    assert request.who_has == {"x": ["w0"]}
    h.state.handle_worker_message("w0", m.WorkerRetiring("lifetime of 60 s"))  # again: no-op
    assert "w0" not in h.flush()
    out = acquired(h, "w1", request.operation, {"x": 8})
    assert out["w0"] == [m.CloseWorker("retired")]
    assert out["n0"] == [m.CloseWorker("retired")]
    assert list(h.state.workers) == ["w1"]
    assert holders(h, "x") == ["w1"]


def test_a_last_worker_whose_lifetime_is_over_is_closed_all_the_same():
    h = Harness(workers=1)
    h.state.add_nanny(m.RegisterNanny("n0", "a", "host", 1))
    h.state.handle_nanny_message("n0", m.WorkerStarted("w0", 2, None))
    h.submit(spec("x"))
    finish_on(h, "x", "w0")
    h.state.handle_worker_message("w0", m.WorkerRetiring("lifetime of 60 s"))
    out = h.flush()
    # Its job is about to end: it leaves, and x is recomputed when a worker comes.
    assert out["w0"] == [m.CloseWorker("lifetime over: lifetime of 60 s")]
    assert out["n0"] == [m.CloseWorker("lifetime over: lifetime of 60 s")]


# --- uploads ------------------------------------------------------------------------------


def test_uploads_reach_current_workers_then_new_ones():
    h = Harness(workers=2)
    out = h.client(m.UploadFile(1, "mod.py", b"x = 1\n", True))
    assert "c" not in out
    stores = {w: msgs[0] for w, msgs in out.items()}
    assert set(stores) == {"w0", "w1"}
    h.state.handle_worker_message("w0", m.FileStored(stores["w0"].upload, None))
    assert "c" not in h.flush()
    h.state.handle_worker_message("w1", m.FileStored(stores["w1"].upload, "SyntaxError: bad"))
    answer = reply(h.flush())
    assert "w1: SyntaxError: bad" in answer.error
    h.add_worker("w2")
    out = h.flush()
    assert m.StoreFile(0, "mod.py", b"x = 1\n", True) in out["w2"]


def test_an_upload_does_not_wait_for_a_worker_that_leaves():
    h = Harness(workers=2)
    h.client(m.UploadFile(1, "mod.py", b"", False))
    h.state.remove_worker("w1")
    assert not [msg for msg in h.flush()["c"] if isinstance(msg, m.Reply)]
    h.state.handle_worker_message("w0", m.FileStored(1, None))
    assert reply(h.flush()).error is None


# --- functions run on the scheduler or on nannies ----------------------------------------


def call(request_id=1):
    return m.RunFunction(request_id, dumps(len), dumps(((), {})), True)


def test_run_on_scheduler_goes_to_the_actor():
    h = Harness(workers=0)
    out = h.client(m.RunOnScheduler(call()))
    (result,) = out["c"]
    assert isinstance(result, m.RunResult)
    assert "no scheduler actor" in result.error.text
    seen = []
    h.state.remote_calls.run_here = lambda client, run: seen.append((client, run.request_id))
    h.client(m.RunOnScheduler(call(7)))
    assert seen == [("c", 7)]


def test_run_on_nannies_relays_and_gathers_results():
    h = Harness(workers=2)
    h.state.add_nanny(m.RegisterNanny("n0", "a", "host", 1))
    h.state.handle_nanny_message("n0", m.WorkerStarted("w0", 2, None))
    h.flush()
    out = h.client(m.RunOnNannies(call(5), None))
    (relayed,) = out["n0"]
    assert isinstance(relayed, m.RunFunction)
    assert "c" not in out
    h.state.handle_nanny_message("n0", m.RunResult(relayed.request_id, dumps(3), None))
    results = reply(h.flush()).results
    assert loads(results["w0"].value) == 3
    assert results["w0"].request_id == 5
    assert "no nanny" in results["w1"].error.text


def test_a_nanny_that_leaves_fails_its_part_of_the_call():
    h = Harness(workers=1)
    h.state.add_nanny(m.RegisterNanny("n0", "a", "host", 1))
    h.state.handle_nanny_message("n0", m.WorkerStarted("w0", 2, None))
    h.flush()
    h.client(m.RunOnNannies(call(5), ["w0"]))
    h.state.remove_nanny("n0")
    results = reply(h.flush()).results
    assert "left before answering" in results["w0"].error.text


def test_a_move_to_a_worker_that_started_retiring_keeps_the_source_copy():
    h = Harness(workers=3)
    h.submit(*[spec(f"k{i}", workers=["w0"]) for i in range(2)], spec("u", workers=["w1"]))
    for i in range(2):
        finish_on(h, f"k{i}", "w0", nbytes=100)
    finish_on(h, "u", "w1", nbytes=10)
    out = h.client(m.RebalanceRequest(1, [f"k{i}" for i in range(2)], ["w0", "w1"]))
    (move,) = out["w1"]
    (moved,) = move.who_has
    (copy,) = h.client(m.RetireWorkersRequest(2, ["w1"], False))["w2"]  # u must leave w1
    out = acquired(h, "w1", move.operation, {moved: 100})
    assert holders(h, moved) == ["w0", "w1"]  # w1 is leaving: w0 keeps its copy
    assert reply(out).request_id == 1
    out = acquired(h, "w2", copy.operation, {"u": 10})
    assert list(reply(out).value) == ["w1"]
    assert holders(h, moved) == ["w0"]
    assert holders(h, "u") == ["w2"]
