"""A worker process stopped with SIGSTOP: its queued tasks run elsewhere, and its
scattered data is there again once it resumes (issue 16, a hung worker)."""

from __future__ import annotations

import os
import signal
import time

import attrs

from trident import Client, LocalCluster


def nap(seconds):
    time.sleep(seconds)
    return seconds


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def test_a_stopped_worker_loses_its_queued_tasks_and_keeps_its_data():
    with (
        LocalCluster(
            n_workers=4, threads_per_worker=1, heartbeat_interval=0.2, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        state = cluster.scheduler.state
        state.liveness.settings = attrs.evolve(
            state.liveness.settings, worker_stall=1.5, worker_timeout=10.0
        )
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        [data] = client.scatter([list(range(100))], workers=[victim])
        # the scheduler learns that nap is fast, so every worker gets a deep queue
        client.gather(client.map(nap, [0.001] * 20, pure=False))
        futures = client.map(nap, [0.3] * 32, pure=False)
        wait_until(lambda: len(state.workers[victim].processing) > 2, 10, "tasks on the victim")
        os.kill(pids[victim], signal.SIGSTOP)
        try:
            # everything but the task it had started finishes without it, well before
            # the scheduler would give up on it (10 s)
            wait_until(
                lambda: sum(f.done() for f in futures) >= len(futures) - 1,
                8,
                "the tasks queued on the stopped worker ran elsewhere",
            )
            assert state.stalls.moved > 0
            wait_until(lambda: victim not in state.workers, 30, "the silent worker removed")
        finally:
            os.kill(pids[victim], signal.SIGCONT)
        # it registers again holding the scattered value, which is not lost
        assert data.result(timeout=60) == list(range(100))
        assert victim in state.workers
        assert state.lost_data.restored == 1
        assert client.gather(futures) == [0.3] * 32
