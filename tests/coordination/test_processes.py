"""Leases held by tasks in worker processes that really die (SIGKILL)."""

from __future__ import annotations

import os
import signal
import time

from trident import Client, Event, LocalCluster, Lock, Queue, Variable


def hold_lock_until_killed(name: str, flag: str) -> str:
    """Take the lock and wait to be killed; a rerun (on a survivor) just returns."""
    if Event(flag).is_set():
        return "rerun"
    Lock(name).acquire()
    Variable(flag).set(os.getpid())
    Event(flag).set()
    time.sleep(60)
    return "not killed"


def put_from_a_task(name: str) -> None:
    Queue(name).put("from a survivor")


def test_a_killed_worker_gives_back_the_lock_of_its_task():
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        future = client.submit(hold_lock_until_killed, "killed", "killed-flag", pure=False)
        pid = Variable("killed-flag").get(timeout=30)
        lock = Lock("killed")
        assert lock.acquire(timeout=0.2) is False
        os.kill(pid, signal.SIGKILL)
        assert lock.acquire(timeout=20) is True
        assert future.result(timeout=20) == "rerun"
        lock.release()
        client.submit(put_from_a_task, "after", pure=False).result(timeout=20)
        assert Queue("after").get(timeout=5) == "from a survivor"
