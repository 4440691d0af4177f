"""Profile trees and the sampler, on real threads running jobs as the executor does."""

from __future__ import annotations

import functools
import sys
import threading
import types

import trio

from trident._profile import merge, new_tree
from trident.protocol.serialize import dumps_task_args
from trident.worker.executor import Job, run_job
from trident.worker.inspection import call_stacks
from trident.worker.profiling import Sampler, add_stack, identifier


def stack_here():
    """This function's frame and its two callers, outermost first."""
    frame = sys._getframe()
    return [frame.f_back.f_back, frame.f_back, frame]


def test_a_frame_between_lines_counts_at_its_first_line():
    """A sampled frame of another thread can have no line (f_lineno None) for a moment;
    it used to raise in the sampler and take the worker down."""
    code = stack_here.__code__
    frame = types.SimpleNamespace(f_code=code, f_lineno=None)
    tree = new_tree()
    add_stack(tree, [frame])
    (leaf,) = tree["children"].values()
    assert leaf["description"]["line_number"] == code.co_firstlineno
    assert leaf["description"]["line"] == "def stack_here():"


def test_trees_count_samples_per_function_and_merge():
    tree = new_tree()
    frames = stack_here()
    add_stack(tree, frames)
    add_stack(tree, frames)
    assert tree["count"] == 2
    (top,) = tree["children"].values()
    assert top["identifier"] == identifier(frames[0].f_code)
    leaf = top["children"][identifier(frames[1].f_code)]["children"][identifier(frames[2].f_code)]
    assert leaf["count"] == 2
    assert leaf["description"]["name"] == "stack_here"
    assert leaf["description"]["line"].startswith("return [frame")
    assert leaf["description"]["filename"] == __file__
    merged = merge(tree, tree)
    assert merged["count"] == 4
    assert tree["count"] == 2
    assert merge()["count"] == 0


def test_sampler_cycles_and_time_ranges():
    now = [100.0]
    sampler = Sampler({}, cycle=1.0, clock=lambda: now[0])
    add_stack(sampler._current.setdefault("inc", new_tree()), stack_here())
    now[0] = 101.5
    sampler.sample()  # closes the cycle that began at 100
    add_stack(sampler._current.setdefault("dec", new_tree()), stack_here())
    now[0] = 101.8
    assert sampler.profile()["count"] == 2
    assert sampler.profile("inc")["count"] == 1
    assert sampler.profile("inc-123abc")["count"] == 1  # a whole key names its prefix
    assert sampler.profile(start=101.6)["count"] == 1
    assert sampler.profile(stop=100.5)["count"] == 1
    assert sampler.profile("nope")["count"] == 0


def blocked(release: threading.Event) -> str:
    release.wait(5)
    return "done"


def test_running_jobs_are_found_on_their_threads():
    release = threading.Event()
    payload, _ = dumps_task_args((), {})
    job = Job("blocked-1", 7, functools.partial(blocked, release), payload, {}, False)
    jobs = {7: job}
    outcomes = []
    worker = types.SimpleNamespace(address="w", memory_limit=0)
    thread = threading.Thread(
        target=lambda: outcomes.append(run_job(job, worker)),
        name="trident-task-test-0",
    )
    thread.start()
    try:
        sampler = Sampler(jobs)
        while "blocked" not in sampler.profile()["children"].__repr__():
            sampler.sample()
        assert sampler.profile("blocked")["count"] >= 1
        stacks = call_stacks(jobs, None)
        assert list(stacks) == ["blocked-1"]
        assert "in blocked" in stacks["blocked-1"][0]
        assert call_stacks(jobs, ["other"]) == {}
        assert call_stacks({}, None) == {}  # not this worker's job
    finally:
        release.set()
        thread.join()
    assert outcomes[0].value == "done"


async def test_the_sampler_sleeps_while_nothing_runs():
    jobs: dict = {}
    sampler = Sampler(jobs, interval=0.001)
    samples = []
    sampler.sample = lambda: samples.append(len(jobs))  # type: ignore[method-assign]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run)
            await trio.sleep(0.05)
            assert samples == []  # idle: never woken
            jobs[1] = object()
            sampler.wake()
            while len(samples) < 3:
                await trio.sleep(0.001)
            assert all(samples)
            jobs.clear()
            await trio.sleep(0.01)
            seen = len(samples)
            await trio.sleep(0.05)
            assert len(samples) == seen  # back to sleep once the run ended
            nursery.cancel_scope.cancel()
