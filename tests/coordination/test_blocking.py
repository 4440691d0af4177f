"""The coordination primitives with a blocking client (the default client)."""

from __future__ import annotations

import threading
import time

import pytest

from trident import Event, Future, Lock, MultiLock, Pub, Queue, Semaphore, Sub, Variable

from .test_locks import increment_under_lock
from .test_values import inc, wait_for_variable


def test_locks_from_threads_and_tasks(trident_blocking_client):
    client = trident_blocking_client
    Variable("blocking-counter").set(0)
    futures = client.map(increment_under_lock, ["blocking"] * 4, pure=False)
    threads = [threading.Thread(target=increment_under_lock, args=("blocking",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.gather(futures)
    assert Variable("blocking-counter").get() == 8
    lock = Lock("blocking-lock")
    assert lock.acquire() is True
    assert lock.locked() is True
    assert Lock("blocking-lock").acquire(timeout=0.05) is False
    assert lock.release() is True
    with lock:
        assert lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


def test_semaphores_and_multi_locks(trident_blocking_client):
    semaphore = Semaphore(max_leases=2, name="blocking-sem")
    assert semaphore.acquire()
    assert semaphore.acquire()
    assert semaphore.acquire(timeout=0.05) is False
    assert semaphore.get_value() == 2
    semaphore.close()
    assert semaphore.get_value() == 0
    with MultiLock(["x", "y"]) as both:
        assert both.locked()
        assert Lock("y").acquire(blocking=False) is False
    assert Lock("y").acquire(blocking=False) is True


def test_queues_variables_and_events(trident_blocking_client):
    client = trident_blocking_client
    queue = Queue("blocking-queue", maxsize=1)
    queue.put(client.submit(inc, 1))
    with pytest.raises(TimeoutError):
        queue.put(2, timeout=0.05)
    future = queue.get()
    assert isinstance(future, Future)
    assert future.result() == 2
    assert queue.qsize() == 0
    waiting = client.submit(wait_for_variable, "blocking-var", pure=False)
    time.sleep(0.05)
    Variable("blocking-var").set([1, 2])
    assert waiting.result() == [1, 2]
    event = Event("blocking-event")
    assert event.is_set() is False
    assert event.wait(timeout=0.05) is False
    event.set()
    assert event.wait() is True


def test_pub_sub_iteration(trident_blocking_client):
    sub = Sub("blocking-topic")
    pub = Pub("blocking-topic")
    for i in range(3):
        pub.put(i)
    received = []
    for message in sub:
        received.append(message)
        if len(received) == 3:
            break
    assert received == [0, 1, 2]
    with pytest.raises(TimeoutError):
        sub.get(timeout=0.05)
