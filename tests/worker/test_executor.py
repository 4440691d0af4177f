"""`executor.complete`: results that cannot be pickled fail their task at once."""

from __future__ import annotations

import threading

from trident.protocol.serialize import dumps, loads
from trident.worker.executor import Job, Outcome, complete


def job(*, inline: bool, actor: bool = False) -> Job:
    return Job("task-1", 1, len, dumps(((), {})), {}, inline, actor=actor)


def test_unpicklable_results_become_the_tasks_error():
    for inline in (True, False):
        outcome = Outcome(job(inline=inline))
        complete(outcome, {"conn": threading.Lock()}, job(inline=inline), "w")
        assert outcome.error is not None
        error = loads(outcome.error.exception)
        assert error.path == "result['conn']"
        assert "'task-1'" in str(error)


def test_picklable_and_actor_results_pass():
    outcome = Outcome(job(inline=False))
    complete(outcome, [1, 2], job(inline=False), "w")
    assert outcome.error is None
    assert outcome.payload is None
    actor = job(inline=False, actor=True)
    outcome = Outcome(actor)
    complete(outcome, threading.Lock(), actor, "w")
    assert outcome.error is None


def test_results_of_known_picklable_types_are_not_pickled_to_check(monkeypatch):
    import numpy as np

    from trident.worker import executor

    def must_not_pickle(value: object) -> None:
        raise AssertionError(f"pickled {value!r} to check it")

    monkeypatch.setattr(executor, "pickling_error", must_not_pickle)
    outcome = Outcome(job(inline=False))
    complete(outcome, np.arange(10), job(inline=False), "w")
    assert outcome.error is None
    assert outcome.nbytes == 80
