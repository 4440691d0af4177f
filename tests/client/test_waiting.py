"""`wait`'s bookkeeping (`_Progress`), driven without a cluster.

`wait` over n futures used to rescan all n on every completion (n² status reads:
18 s for 20,000 no-op tasks). These tests drive the tracker with stand-in futures and
count the status reads, so the linear cost is checked without timing anything.
"""

from __future__ import annotations

from typing import Any

import pytest

from trident.client.future import ERROR, FINISHED, LOST, PENDING
from trident.client.waiting import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    _Progress,
)


class CountingState:
    """A future state whose status reads are counted."""

    reads = 0

    def __init__(self, status: str = PENDING) -> None:
        self._status = status
        self.listeners: list[Any] = []

    @property
    def status(self) -> str:
        CountingState.reads += 1
        return self._status

    def move(self, status: str) -> None:
        self._status = status
        for listener in list(self.listeners):
            listener(self)


class Watch:
    """Stands in for the client's `FutureWatch`."""

    def add_listener(self, state: CountingState, listener: Any) -> bool:
        if state._status != PENDING:
            return False
        state.listeners.append(listener)
        return True

    def remove_listener(self, state: CountingState, listener: Any) -> None:
        state.listeners.remove(listener)


class Client:
    _future_watch = Watch()


class StandInFuture:
    client = Client()

    def __init__(self, state: CountingState) -> None:
        self._state = state


def tracked(return_when: str, states: list[CountingState]) -> tuple[_Progress, list[int]]:
    met: list[int] = []
    progress = _Progress(return_when, lambda: met.append(1))
    progress.track([StandInFuture(s) for s in states])
    return progress, met


def test_all_completed_is_met_when_the_last_one_finishes():
    states = [CountingState() for _ in range(3)]
    progress, met = tracked(ALL_COMPLETED, states)
    states[0].move(FINISHED)
    states[2].move(ERROR)
    assert not met
    assert not progress.met()
    states[1].move(FINISHED)
    assert met
    assert progress.met()


def test_first_completed_and_first_exception():
    states = [CountingState() for _ in range(3)]
    _, met = tracked(FIRST_COMPLETED, states)
    states[1].move(FINISHED)
    assert met

    states = [CountingState() for _ in range(3)]
    _progress, met = tracked(FIRST_EXCEPTION, states)
    states[0].move(FINISHED)
    assert not met
    states[2].move(ERROR)
    assert met


def test_futures_done_before_tracking_count_as_done():
    states = [CountingState(FINISHED), CountingState(), CountingState(FINISHED)]
    progress, met = tracked(ALL_COMPLETED, states)
    assert not met
    assert not progress.met()
    assert len(progress.registered) == 1
    states[1].move(FINISHED)
    assert met


def test_a_future_that_goes_back_to_pending_is_waited_for_again():
    states = [CountingState(), CountingState()]
    progress, _ = tracked(ALL_COMPLETED, states)
    states[0].move(LOST)
    states[0].move(PENDING)
    states[1].move(FINISHED)
    assert not progress.met()
    states[0].move(FINISHED)
    assert progress.met()


def test_the_same_future_twice_is_tracked_once():
    state = CountingState()
    _progress, met = tracked(ALL_COMPLETED, [state, state])
    assert len(state.listeners) == 1
    state.move(FINISHED)
    assert met


def test_untrack_removes_every_listener():
    states = [CountingState() for _ in range(5)]
    progress, _ = tracked(ALL_COMPLETED, states)
    progress.untrack()
    assert all(not s.listeners for s in states)


@pytest.mark.parametrize("return_when", [ALL_COMPLETED, FIRST_EXCEPTION])
def test_each_completion_reads_a_constant_number_of_statuses(return_when):
    n = 5_000
    states = [CountingState() for _ in range(n)]
    CountingState.reads = 0
    progress, met = tracked(return_when, states)
    for state in states:
        state.move(FINISHED)
    assert met
    assert progress.met()
    # A rescan per completion would read n * n / 2 = 12.5 million statuses.
    assert CountingState.reads <= 4 * n
