"""Actors with a blocking client and worker processes: restarts after real worker deaths."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from trident import ActorDied, ActorRestarted, Client, LocalCluster


class Counter:
    def __init__(self, start: int = 0):
        self.n = start
        self.restored = False

    @classmethod
    def on_restart(cls, start: int = 0) -> Counter:
        counter = cls(start)
        counter.restored = True
        return counter

    def incr(self, k: int = 1) -> int:
        self.n += k
        return self.n

    def pid(self) -> int:
        return os.getpid()

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds


class Plain:
    def __init__(self) -> None:
        self.generation = os.getpid()

    def pid(self) -> int:
        return os.getpid()


@pytest.fixture
def client():
    # Killed workers are not replaced (that is the nanny's job): three leave room for two kills.
    with LocalCluster(n_workers=3, threads_per_worker=1) as cluster, Client(cluster) as client:
        yield client


def test_blocking_client_reads_attributes_directly(client):
    counter = client.actor(Counter, 5)
    assert counter.incr().result() == 6
    assert counter.n == 6
    assert client.gather([counter.incr(), counter.incr()]) == [7, 8]
    threads = [threading.Thread(target=lambda: counter.incr().result()) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.n == 12


def test_restart_after_the_worker_is_killed(client):
    counter = client.actor(Counter, 100, max_restarts=1)
    assert counter.incr().result(timeout=10) == 101
    first_pid = counter.pid().result()
    in_flight = counter.sleep(10)
    time.sleep(0.3)
    os.kill(first_pid, signal.SIGKILL)
    with pytest.raises(ActorRestarted, match="being restarted"):
        in_flight.result(timeout=20)
    assert counter.incr().result(timeout=20) == 101  # rebuilt from its arguments
    assert counter.restored  # through the class's on_restart hook
    assert counter.pid().result() != first_pid
    second_pid = counter.pid().result()
    os.kill(second_pid, signal.SIGKILL)
    with pytest.raises(ActorDied):
        counter.incr().result(timeout=20)
    start = time.perf_counter()
    with pytest.raises(ActorDied):
        counter.incr().result(timeout=20)
    assert time.perf_counter() - start < 1  # at once, every time


def test_no_restarts_means_the_actor_dies_with_its_worker(client):
    plain = client.actor(Plain)
    os.kill(plain.pid().result(timeout=10), signal.SIGKILL)
    with pytest.raises(ActorDied):
        plain.pid().result(timeout=20)
