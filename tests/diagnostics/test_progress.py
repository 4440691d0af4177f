"""`progress`: text bars (terminal and log), the async stream, and notebook widgets."""

from __future__ import annotations

import io
import sys
import time
import types

import pytest
import trio

from trident import progress
from trident.diagnostics import Progress, ProgressUpdate, ProgressWidget
from trident.diagnostics.text import render
from trident.diagnostics.tracker import Counts, ProgressTracker


def inc(x: int) -> int:
    time.sleep(0.01)
    return x + 1


def double(x: int) -> int:
    return 2 * x


def fail(x: int) -> int:
    raise ValueError(x)


async def slow(x: int) -> int:
    await trio.sleep(0.02)
    return x


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_render_one_bar_or_one_per_function():
    update = ProgressUpdate(
        done=3,
        total=4,
        errors=1,
        elapsed=1.25,
        groups={"inc": Counts(2, 2, 0), "fail": Counts(1, 2, 1)},
    )
    (overall,) = render(update, multi=False, width=8)
    assert overall == "[######  ] |  75% Completed | 3 / 4 | 1 error | 1.2s"
    lines = render(update, multi=True, width=4)
    assert lines == [
        "inc  [####] | 100% Completed | 2 / 2",
        "fail [##  ] |  50% Completed | 1 / 2 | 1 error | 1.2s",
    ]


def test_blocking_progress_writes_a_line_per_tenth_in_a_log(trident_blocking_client):
    client = trident_blocking_client
    futures = client.map(inc, range(20)) + client.map(double, range(5))
    out = io.StringIO()
    assert progress(futures, file=out, width=10) is None
    assert all(f.done() for f in futures)
    text = out.getvalue()
    assert "inc    [##########] | 100% Completed | 20 / 20" in text
    assert "double [##########] | 100% Completed | 5 / 5" in text
    assert len(text.splitlines()) <= 2 * 11  # at most one block per tenth


def test_blocking_progress_redraws_in_place_on_a_terminal(trident_blocking_client):
    client = trident_blocking_client
    futures = [*client.map(inc, range(10), pure=False), client.submit(fail, 1)]
    out = Terminal()
    progress(*futures, multi=False, file=out, interval=0.01)
    text = out.getvalue()
    assert "\r\x1b[2K[" in text
    assert text.endswith("\n")
    final = text.rsplit("\x1b[2K", 1)[1]
    assert final.startswith("[" + "#" * 40 + "] | 100% Completed | 11 / 11 | 1 error")
    done_already = client.map(double, range(3))
    client.gather(done_already)
    out = io.StringIO()
    progress(done_already, complete=False, file=out)
    assert "0 / 0" in out.getvalue()


async def test_async_progress_streams_updates(trident_client):
    with trio.fail_after(30):
        futures = trident_client.map(slow, range(6), pure=False)
        bar = progress(futures)
        assert isinstance(bar, Progress)
        updates = [update async for update in bar]
        assert updates[-1].complete
        assert updates[-1].done == updates[-1].total == 6
        assert [u.done for u in updates] == sorted(u.done for u in updates)
        assert updates[-1].groups == {"slow": Counts(6, 6, 0)}


async def test_awaiting_async_progress_draws_until_done(trident_client):
    with trio.fail_after(30):
        futures = trident_client.map(slow, range(4), pure=False)
        futures.append(trident_client.submit(fail, 0))
        out = io.StringIO()
        await progress(futures, file=out, multi=True)
        assert all(f.done() for f in futures)
        text = out.getvalue()
        assert "slow [" in text
        assert "| 4 / 4" in text
        assert "fail [" in text
        assert "| 1 error" in text


@pytest.fixture
def fake_ipywidgets(monkeypatch):
    """A stand-in for ipywidgets: widgets are plain objects with attributes."""

    class Widget:
        def __init__(self, *children: object, **traits: object) -> None:
            self.children = children[0] if children else []
            self.bar_style = ""
            for name, value in traits.items():
                setattr(self, name, value)

    module = types.ModuleType("ipywidgets")
    for name in ("IntProgress", "HTML", "HBox", "VBox"):
        setattr(module, name, type(name, (Widget,), {}))
    monkeypatch.setitem(sys.modules, "ipywidgets", module)
    return module


def test_notebook_widgets_update_live(trident_blocking_client, fake_ipywidgets):
    client = trident_blocking_client
    futures = client.map(inc, range(5)) + client.map(double, range(5))
    widget = progress(futures, notebook=True)
    assert isinstance(widget, ProgressWidget)
    client.gather(futures)
    deadline = time.monotonic() + 10
    while widget._bars["double"].value < 5 or widget._bars["inc"].value < 5:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert widget._bars["inc"].bar_style == "success"
    assert "5 / 5" in widget._labels["inc"].value
    single = progress(futures, notebook=True, multi=False)
    assert single._bars[""].value == 10
    assert single._bars[""].max == 10


def test_notebook_bars_need_ipywidgets(trident_blocking_client, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    future = trident_blocking_client.submit(double, 1)
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        progress(future, notebook=True)


class FakeState:
    def __init__(self, key: str, status: str = "pending"):
        self.key = key
        self.status = status

    def done(self) -> bool:
        return self.status != "pending"


def fake_futures(keys: list[str]):
    """Futures whose states the test moves by hand, calling the tracker's listener."""
    listeners = {}
    watch = types.SimpleNamespace(
        add_listener=lambda state, fn: listeners.setdefault(state.key, fn) is fn,
        remove_listener=lambda state, fn: listeners.pop(state.key, None),
    )
    client = types.SimpleNamespace(_future_watch=watch)
    futures = [
        types.SimpleNamespace(key=k, _state=FakeState(k), client=client, done=lambda: False)
        for k in keys
    ]

    def move(i: int, status: str) -> None:
        futures[i]._state.status = status
        listeners[futures[i].key](futures[i]._state)

    return futures, move, listeners


def test_tracker_counts_each_change_once_and_takes_back_lost_results():
    futures, move, listeners = fake_futures(["inc-1", "inc-2", "double-1"])
    tracker = ProgressTracker(futures)
    move(0, "finished")
    move(2, "error")
    update = tracker.snapshot()
    assert (update.done, update.errors) == (2, 1)
    assert update.groups == {"inc": Counts(1, 2, 0), "double": Counts(1, 1, 1)}
    move(0, "pending")  # its data was lost: recomputing
    move(2, "error")  # the same outcome reported again counts once
    assert tracker.snapshot().groups == {"inc": Counts(0, 2, 0), "double": Counts(1, 1, 1)}
    assert not tracker.wait_finished(0.01)
    move(0, "finished")
    move(1, "cancelled")
    update = tracker.snapshot()
    assert update.complete
    assert (update.done, update.errors) == (3, 2)
    assert tracker.wait_finished(0)
    assert listeners == {}
