"""WorkerState's side of worker plugins: setup and teardown come out as instructions and
their outcomes go back to the scheduler; task state changes are noted only while a
plugin watches them."""

from __future__ import annotations

from trident.protocol import messages as m
from trident.protocol.failures import error_info
from trident.protocol.serialize import dumps
from trident.worker import events as ev
from trident.worker import instructions as ins

from .test_state import Harness, run


def test_setup_and_teardown_are_instructions_and_answered():
    h = Harness()
    payload = dumps("plugin")
    _, instructions = h.handle(m.SetupPlugin(4, "p", payload), m.TeardownPlugin(5, "p"))
    assert instructions == [ins.SetupPlugin(4, "p", payload), ins.TeardownPlugin(5, "p")]
    failure = error_info(ValueError("x"), "tcp://me")
    out, _ = h.event(ev.PluginHookDone(4, failure, "s1"))
    assert out == [m.PluginDone(4, failure)]
    out, _ = h.event(ev.PluginHookDone(0, None, "s2"))  # a newcomer's setup: no answer
    assert out == []


def test_transitions_are_noted_only_while_watched():
    h = Harness()
    h.handle(run("quiet"))
    h.finish("quiet")
    assert h.state.transition_log is None
    h.state.watch_transitions(True)
    h.handle(run("watched"))
    h.finish("watched")
    h.handle(run("x", {"dep": ["tcp://peer"]}))
    h.event(ev.FetchDone("tcp://peer", ["dep"], {"dep": 1}, {"dep": 8}, "f"))
    assert h.state.transition_log == [
        ("watched", "released", "waiting"),
        ("watched", "waiting", "ready"),
        ("watched", "ready", "executing"),
        ("watched", "executing", "memory"),
        ("x", "released", "waiting"),
        ("dep", "released", "fetch"),
        ("dep", "fetch", "flight"),
        ("dep", "flight", "memory"),
        ("x", "waiting", "ready"),
        ("x", "ready", "executing"),
    ]
    h.state.watch_transitions(False)
    assert h.state.transition_log is None
    assert h.state.slots.transition_log is None
