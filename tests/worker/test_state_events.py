"""WorkerState's one entry: every scheduler message and outcome is an event with a
stimulus id; replicas, files, output capture, closing and actor hosting come out as
instructions; the event log is bounded."""

from __future__ import annotations

import pytest

from trident.protocol import messages as m
from trident.protocol.serialize import dumps
from trident.worker import events as ev
from trident.worker import instructions as ins
from trident.worker.functions import FunctionCache
from trident.worker.state import WorkerState

from .test_state import Harness, executed, run


def fetches(instructions):
    return sorted((i.peer, sorted(i.keys)) for i in instructions if isinstance(i, ins.Fetch))


def test_replicas_are_fetched_through_the_fetch_queue_and_kept():
    h = Harness()
    h.handle(run("c", {"x": ["tcp://p"]}))  # x is being fetched for c already
    _, instructions = h.handle(
        m.AcquireReplicas(7, {"x": ["tcp://p"], "y": ["tcp://p", "tcp://q"], "z": ["tcp://me"]})
    )
    # y joins the fetch queue; z has no holder but this worker: missing at once.
    assert fetches(instructions) == [("tcp://p", ["y"])]
    h.event(ev.FetchDone("tcp://p", ["x"], {"x": 1}, {"x": 8}, "f1"))
    out, instructions = h.event(ev.FetchFailed("tcp://p", ["y"], "f2"))
    assert not [msg for msg in out if isinstance(msg, m.ReplicasAcquired)]
    assert fetches(instructions) == [("tcp://q", ["y"])]  # the next holder, in order
    out, _ = h.event(ev.FetchDone("tcp://q", ["y"], {"y": 2}, {"y": 16}, "f3"))
    assert out == [m.ReplicasAcquired(7, {"x": 8, "y": 16}, ["z"])]
    h.finish("c")
    assert h.state.data == {"x": 1, "y": 2, "c": 1}  # replicas outlive the task that read x


def test_replica_fetches_respect_the_per_peer_limit():
    h = Harness()
    acquire = [m.AcquireReplicas(i, {f"k{i}": ["tcp://p"]}) for i in range(4)]
    _, first = h.handle(acquire[0])
    _, second = h.handle(acquire[1])
    _, third = h.handle(*acquire[2:])
    assert len(fetches(first)) == len(fetches(second)) == 1
    assert fetches(third) == []  # two fetches from tcp://p are in flight already
    _, instructions = h.event(ev.FetchDone("tcp://p", ["k0"], {"k0": 0}, {"k0": 8}, "f"))
    assert fetches(instructions) == [("tcp://p", ["k2", "k3"])]


def test_a_replica_freed_while_fetching_is_reported_missing():
    h = Harness()
    h.handle(m.AcquireReplicas(1, {"k": ["tcp://p"]}))
    out, _ = h.handle(m.FreeKeys(["k"]))
    assert out == [m.ReplicasAcquired(1, {}, ["k"])]
    assert h.state.tasks == {}


def test_keys_held_already_count_as_acquired():
    h = Harness()
    h.event(ev.DataPut({"k": 5}, {"k": 8}, "scatter"))
    out, instructions = h.handle(m.AcquireReplicas(3, {"k": ["tcp://p"]}))
    assert out == [m.ReplicasAcquired(3, {"k": 8}, [])]
    assert fetches(instructions) == []


def test_files_output_functions_and_closing_are_instructions():
    h = Harness()
    function = dumps(len)
    _, instructions = h.handle(
        m.DefineFunction("f", function),
        m.StoreFile(4, "mod.py", b"x = 1", True),
        m.CaptureOutput(True),
        run("a"),
    )
    assert instructions[:3] == [
        ins.LoadFunction("f", function),
        ins.StoreFile(4, "mod.py", b"x = 1", True),
        ins.CaptureOutput(True),
    ]
    assert executed(instructions) == ["a"]  # after the function and the file
    out, _ = h.event(ev.FileStoreDone(4, None, "stored"))
    assert out == [m.FileStored(4, None)]
    _, instructions = h.handle(m.CloseWorker("retired"), run("b"))
    assert instructions == [ins.Close("retired")]  # nothing new starts once closing
    assert "b" not in h.state.tasks


def test_forgotten_functions_are_dropped_by_the_worker_too():
    h = Harness()
    h.handle(m.DefineFunction("f", dumps(len)))
    _, instructions = h.handle(m.ForgetFunctions(["f"]))
    assert instructions == [ins.ForgetFunctions(["f"])]
    assert "f" not in h.state.functions


def test_the_function_cache_frees_what_it_forgets():
    cache = FunctionCache("w")
    cache.load("f", dumps(len))
    assert cache.get("f") is len
    cache.forget(["f", "never-defined"])
    with pytest.raises(RuntimeError, match="does not know function 'f'"):
        cache.get("f")()


def test_an_actor_is_hosted_before_its_location_is_the_result():
    h = Harness()
    options = m.ActorOptions(0, 1)
    msg = m.RunTask("act", "f", dumps(()), {}, [0, 0], True, None, None, options, 0)
    h.handle(msg)
    run_id = h.run_id("act")
    instance = object()
    out, instructions = h.event(ev.RunFinished(run_id, instance, 8, "Obj", 1.0, 2.0, None, "o"))
    assert out == []
    [host] = instructions
    assert isinstance(host, ins.HostActor)
    assert host.instance is instance
    assert (host.key, host.run_id, host.options, host.restarts) == ("act", run_id, options, 0)
    assert run_id in h.state.executing  # the slot is held until the actor is hosted
    out, _ = h.event(ev.ActorHosted(run_id, "location", 16, b"payload", "o"))
    assert out == [m.TaskFinished("act", 16, "Actor", 1.0, 2.0, b"payload")]
    assert h.state.data == {"act": "location"}
    assert not h.state.executing


def test_every_event_is_logged_with_its_stimulus_id_and_the_log_is_bounded():
    state = WorkerState("tcp://me", 1, log_length=5)
    state.handle(ev.FromScheduler(run("a"), "scheduler-1"))
    state.flush()
    assert list(state.log) == [
        ("scheduler-1", "RunTask", "a"),
        ("scheduler-1", "flush", 0, 1),  # no message, one instruction
    ]
    run_id = next(iter(state.executing))
    state.handle(ev.RunFinished(run_id, 1, 8, "int", 0.0, 1.0, None, "outcome-1"))
    state.flush()
    assert list(state.log)[-2:] == [
        ("outcome-1", "RunFinished", run_id),
        ("outcome-1", "flush", 1, 0),
    ]
    for i in range(20):
        state.handle(ev.FromScheduler(m.FreeKeys([f"k{i}", "x", "y", "z"]), f"s{i}"))
    assert len(state.log) == 5
    assert state.log[-1] == ("s19", "FreeKeys", ["k19", "x", "y", "... 4 in all"])


def test_objects_that_are_no_events_are_refused():
    state = WorkerState("tcp://me", 1)
    with pytest.raises(TypeError):
        state.handle(run("a"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        state.handle(ev.FromScheduler(m.TaskFinished("a", 1, "", 0.0, 0.0, None), "s"))
