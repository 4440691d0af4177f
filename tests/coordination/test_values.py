"""Queues, variables, events and pub/sub with an asynchronous client and from tasks;
futures travelling through them stay alive and arrive usable."""

from __future__ import annotations

import gc
import threading

import pytest
import trio

from trident import (
    Client,
    Event,
    Future,
    Pub,
    Queue,
    SchedulerError,
    SerializationError,
    Sub,
    Variable,
    get_client,
)
from trident.client.stored import pack
from trident.protocol import messages as m


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


def inc(x: int) -> int:
    return x + 1


def produce(name: str, n: int) -> int:
    queue = Queue(name)
    for i in range(n):
        queue.put(i)
    return n


def consume(name: str, n: int) -> list[int]:
    queue = Queue(name)
    return [queue.get(timeout=10) for _ in range(n)]


def submit_into_queue(name: str, x: int) -> str:
    """A task that submits a subtask and hands its future over through a queue."""
    future = get_client().submit(inc, x, pure=False)
    Queue(name).put(future)
    return future.key


def wait_for_variable(name: str) -> object:
    return Variable(name).get(timeout=10)


async def wait_for_event(name: str) -> bool:
    return await Event(name).wait(timeout=10)


def publish(topic: str, n: int) -> None:
    pub = Pub(topic)
    for i in range(n):
        pub.put({"i": i})


async def drop_futures() -> None:
    gc.collect()
    await trio.sleep(0.05)  # let the releases reach the scheduler


async def test_queue_between_producer_and_consumer_tasks(trident_client):
    client = trident_client
    consumer = client.submit(consume, "work", 5, pure=False)
    producer = client.submit(produce, "work", 5, pure=False)
    assert await producer == 5
    assert await consumer == [0, 1, 2, 3, 4]
    queue = Queue("work", client=client)
    assert await queue.qsize() == 0


async def test_queue_get_put_timeouts_batches_and_size(trident_client):
    queue = Queue("bounded", client=trident_client, maxsize=2)
    await queue.put(1)
    await queue.put(2)
    with pytest.raises(TimeoutError):
        await queue.put(3, timeout=0.1)
    assert await queue.qsize() == 2
    assert await queue.get(batch=True) == [1, 2]
    assert await queue.get(batch=True) == []
    with pytest.raises(TimeoutError):
        await queue.get(timeout=0.1)
    for i in range(3):
        await queue.put(i, timeout=1)
        if i == 1:
            assert await queue.get(batch=2) == [0, 1]
    assert await queue.get() == 2
    with pytest.raises(ValueError, match="positive int"):
        queue.get(batch=0)


async def test_a_cancelled_get_loses_no_item(trident_client):
    client = trident_client
    queue = Queue("cancelled-get", client=client)
    for i in range(3):
        async with trio.open_nursery() as nursery:

            async def take() -> None:
                await Queue("cancelled-get", client=client).get()
                raise AssertionError("the get was not cancelled")

            nursery.start_soon(take)
            await trio.sleep(0.05)  # the get waits on the scheduler
            # Put an item without waiting and cancel at once: the scheduler hands the item
            # to the waiting get just before the get's withdrawal arrives.
            client._core.enqueue(m.QueuePut(0, "cancelled-get", [pack(i, "item")], False, None))
            nursery.cancel_scope.cancel()
        assert await queue.get(timeout=5) == i  # the cancelled get put it back


async def test_futures_travel_through_a_queue_between_clients(trident_cluster, trident_client):
    queue = Queue("futures", client=trident_client)
    async with Client(trident_cluster, asynchronous=True, set_as_default=False) as other:
        future = other.submit(inc, 41, pure=False)
        key = future.key
        await Queue("futures", client=other).put(future)
        del future
        await drop_futures()
    received = await queue.get(timeout=5)  # the sender has left: only the queue held it
    assert isinstance(received, Future)
    assert received.key == key
    assert received.client is trident_client
    assert await received == 42


async def test_futures_put_by_tasks_arrive_with_their_results(trident_client):
    client = trident_client
    keys = await client.gather(client.map(submit_into_queue, ["from-tasks"] * 3, range(3)))
    queue = Queue("from-tasks", client=client)
    futures = await queue.get(batch=3)
    assert sorted(f.key for f in futures) == sorted(keys)
    assert sorted(await client.gather(futures)) == [1, 2, 3]


async def test_a_closed_queue_fails_its_waiters(trident_client):
    queue = Queue("closing", client=trident_client)
    async with trio.open_nursery() as nursery:
        failures = []

        async def wait() -> None:
            try:
                await Queue("closing", client=trident_client).get()
            except SchedulerError as exc:
                failures.append(str(exc))

        nursery.start_soon(wait)
        await trio.sleep(0.05)
        await queue.close()
    assert "closed" in failures[0]


async def test_unpicklable_values_are_refused_with_their_path(trident_client):
    queue = Queue("unpicklable", client=trident_client)
    with pytest.raises(SerializationError, match=r"value\['lock'\] -> _thread.lock"):
        await queue.put({"lock": threading.Lock()})
    with pytest.raises(TypeError):  # a SerializationError is a TypeError as well
        await Variable("unpicklable", client=trident_client).set(threading.Lock())


async def test_a_variable_wakes_waiting_tasks_and_holds_its_future(trident_client):
    client = trident_client
    waiting = client.submit(wait_for_variable, "announced", pure=False)
    await trio.sleep(0.05)
    await Variable("announced", client=client).set("hello")
    assert await waiting == "hello"
    variable = Variable("holds", client=client)
    future = client.submit(inc, 1, pure=False)
    await variable.set(future)
    del future
    await drop_futures()
    assert await (await variable.get()) == 2
    await variable.delete()
    with pytest.raises(TimeoutError):
        await variable.get(timeout=0.05)


async def test_events_release_every_waiting_task(trident_client):
    client = trident_client
    event = Event("go", client=client)
    futures = client.map(wait_for_event, ["go"] * 4, pure=False)
    assert not await event.is_set()
    assert await event.wait(timeout=0.05) is False
    await event.set()
    assert await client.gather(futures) == [True] * 4
    assert await event.is_set()
    await event.clear()
    assert not await event.is_set()


async def test_published_values_reach_every_subscriber(trident_client):
    client = trident_client
    first, second = Sub("numbers", client=client), Sub("numbers", client=client)
    await client.submit(publish, "numbers", 3, pure=False)
    assert [await first.get(timeout=5) for _ in range(3)] == [{"i": i} for i in range(3)]
    received = []
    async for message in second:
        received.append(message["i"])
        if len(received) == 3:
            break
    assert received == [0, 1, 2]
    with pytest.raises(TimeoutError):
        await first.get(timeout=0.05)


async def test_a_future_published_on_a_topic_arrives_usable(trident_client):
    client = trident_client
    sub = Sub("futures-topic", client=client)
    future = client.submit(inc, 9, pure=False)
    Pub("futures-topic", client=client).put([future])
    del future
    (received,) = await sub.get(timeout=5)
    assert await received == 10
