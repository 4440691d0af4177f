"""SchedulerState's plugin registry and story driven directly: worker and nanny plugins
are relayed to current peers and newcomers, answers are gathered, scheduler plugins go
through the actor and hear the state's events; the story is bounded. Invariants are
checked after every step (`Harness.flush`)."""

from __future__ import annotations

from typing import Any

from trident import SchedulerPlugin
from trident.protocol import messages as m
from trident.protocol.failures import error_info
from trident.protocol.serialize import dumps
from trident.scheduler.story import TaskStory

from .test_state import Harness, spec

PAYLOAD = dumps("a pickled plugin")


def answer(out, client="c"):
    (found,) = [msg for msg in out.get(client, []) if isinstance(msg, m.PluginResults)]
    return found


def setups(out):
    return {
        peer: msg for peer, msgs in out.items() for msg in msgs if isinstance(msg, m.SetupPlugin)
    }


def test_worker_plugins_reach_current_workers_then_newcomers():
    h = Harness(workers=2)
    out = h.client(m.RegisterPlugin(1, "worker", "p", PAYLOAD, False))
    assert "c" not in out
    sent = setups(out)
    assert set(sent) == {"w0", "w1"}
    relay = sent["w0"].request
    h.state.handle_worker_message("w0", m.PluginDone(relay, None))
    assert "c" not in h.flush()
    failure = error_info(ZeroDivisionError("boom"), "w1")
    h.state.handle_worker_message("w1", m.PluginDone(relay, failure))
    assert answer(h.flush()) == m.PluginResults(1, {"w0": None, "w1": failure}, None)
    h.add_worker("w2")
    assert setups(h.flush())["w2"] == m.SetupPlugin(0, "p", PAYLOAD)


def test_idempotent_registrations_and_unknown_names_are_answered_at_once():
    h = Harness(workers=1)
    h.client(m.RegisterPlugin(1, "worker", "p", PAYLOAD, False))
    out = h.client(m.RegisterPlugin(2, "worker", "p", PAYLOAD, True))
    assert answer(out) == m.PluginResults(2, {}, None)
    assert setups(out) == {}
    refused = answer(h.client(m.UnregisterPlugin(3, "worker", "nope")))
    assert "does not exist" in refused.error.text
    assert (
        "no plugin kind"
        in answer(h.client(m.RegisterPlugin(4, "gpu", "p", PAYLOAD, False))).error.text
    )


def test_unregistering_stops_sending_and_does_not_wait_for_leavers():
    h = Harness(workers=2)
    h.client(m.RegisterPlugin(1, "worker", "p", PAYLOAD, False))
    out = h.client(m.UnregisterPlugin(2, "worker", "p"))
    teardowns = {w: msgs[0] for w, msgs in out.items() if w != "c"}
    assert set(teardowns) == {"w0", "w1"}
    h.state.remove_worker("w1")
    h.state.handle_worker_message("w0", m.PluginDone(teardowns["w0"].request, None))
    outcome = [msg for msg in h.flush()["c"] if isinstance(msg, m.PluginResults)]
    assert outcome[-1] == m.PluginResults(2, {"w0": None}, None)
    h.add_worker("w3")
    assert setups(h.flush()) == {}


def test_nanny_plugins_go_to_nannies_listed_by_their_workers():
    h = Harness(workers=1)
    h.state.add_nanny(m.RegisterNanny("n0", "a", "host", 1))
    h.state.handle_nanny_message("n0", m.WorkerStarted("w0", 2, None))
    h.flush()
    out = h.client(m.RegisterPlugin(1, "nanny", "np", PAYLOAD, False))
    (relay,) = [msg.request for msg in out["n0"]]
    h.state.handle_nanny_message("n0", m.PluginDone(relay, None))
    assert answer(h.flush()) == m.PluginResults(1, {"w0": None}, None)
    h.state.add_nanny(m.RegisterNanny("n1", "b", "host", 3))
    out = h.flush()
    assert isinstance(out["n1"][0], m.NannyWelcome)
    assert out["n1"][1] == m.SetupPlugin(0, "np", PAYLOAD)


class Watcher(SchedulerPlugin):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def add_worker(self, scheduler: Any, worker: str) -> None:
        self.events.append(("add_worker", scheduler, worker))

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self.events.append(("remove_worker", worker))

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        self.events.append((key, start, finish))
        raise RuntimeError("a broken hook is only logged")


def test_scheduler_plugins_go_through_the_actor_and_hear_events():
    h = Harness(workers=1)
    out = h.client(m.RegisterPlugin(1, "scheduler", "s", PAYLOAD, False))
    assert "no scheduler actor" in answer(out).error.text
    seen = []
    h.state.plugins.run_here = lambda client, msg: seen.append((client, msg.request_id))
    h.client(m.RegisterPlugin(2, "scheduler", "s", PAYLOAD, False))
    assert seen == [("c", 2)]
    watcher = Watcher()
    h.state.plugins.scheduler = "the actor"
    h.state.plugins.add_scheduler_plugin("s", watcher)
    assert answer(h.client(m.RegisterPlugin(3, "scheduler", "s", PAYLOAD, True))).error is None
    h.add_worker("w1")
    h.submit(spec("x"))
    h.finish("x")
    h.state.remove_worker("w1")
    h.flush()
    assert ("add_worker", "the actor", "w1") in watcher.events
    assert ("remove_worker", "w1") in watcher.events
    assert ("x", "processing", "memory") in watcher.events
    assert h.state.plugins.remove_scheduler_plugin("s") is watcher
    assert h.state.story.observers == []


def test_the_story_keeps_every_transition_bounded():
    h = Harness(workers=1)
    h.submit(spec("x"))
    h.finish("x")
    story = h.state.story.story(["x"])
    assert [(s, f) for _, s, f, _, _ in story] == [
        ("released", "waiting"),
        ("waiting", "queued"),
        ("queued", "processing"),
        ("processing", "memory"),
    ]
    answer_ = h.client(m.StoryRequest(5, ["x", "y"]))["c"][0]
    assert [entry[:3] for entry in answer_.value] == [list(e[:3]) for e in story]
    small = TaskStory(lambda: 0.0, length=3)
    h2 = Harness(workers=1)
    h2.state.story.log = small.log
    h2.submit(spec("a"))
    h2.finish("a")
    assert len(h2.state.story.log) == 3
