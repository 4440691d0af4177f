"""Structured remote concurrency: cancellation reaches running code, deadlines, task
groups, subtasks owned by their parent task, and clean shutdown."""

from __future__ import annotations

import time

import pytest
import trio

from trident import CancelledError, Client, fire_and_forget, get_client
from trident.testing import in_process_cluster

from ..polling import wait_until

finished: list[str] = []  # tags of async tasks whose finally block ran on a worker


async def sleeper(seconds: float, tag: str) -> str:
    try:
        await trio.sleep(seconds)
        return tag
    finally:
        finished.append(tag)


def sync_sleep(seconds: float) -> float:
    time.sleep(seconds)
    return time.time()


def now() -> float:
    return time.time()


def fail(message: str) -> None:
    raise ValueError(message)


async def fail_later(seconds: float, message: str) -> None:
    await trio.sleep(seconds)
    raise ValueError(message)


async def parent_with_children(tag: str, n: int, keep: bool = False) -> list[str]:
    client = get_client()
    children = [client.submit(sleeper, 30, f"{tag}-child-{i}", pure=False) for i in range(n)]
    if keep:
        fire_and_forget(children[0])
    return await client.gather(children)


def sync_parent_that_fails(tag: str) -> None:
    client = get_client()
    child = client.submit(sleeper, 30, f"{tag}-child", pure=False)
    time.sleep(0.3)  # let the child start
    raise RuntimeError(f"{tag} gave up with {child.key} still running")


async def wait_for(tags: list[str], timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not all(tag in finished for tag in tags):
            await trio.sleep(0.005)


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


# --- cancellation and thread slots ---------------------------------------------------


async def test_a_cancelled_sync_task_keeps_its_thread_until_it_returns():
    async with (
        in_process_cluster(n_workers=1, threads_per_worker=1) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        started = time.time()
        running = client.submit(sync_sleep, 0.5, pure=False)
        (worker,) = [h.worker for h in cluster.workers.values()]
        await wait_until(lambda: worker.state.executing)
        await running.cancel()
        assert running.cancelled()
        after = await client.submit(now, pure=False)
        assert after >= started + 0.45  # did not start before the sleeping thread was free


# --- deadlines -------------------------------------------------------------------------


async def test_deadlines_fail_sync_and_async_tasks_with_timeout_error(trident_client):
    with pytest.raises(TimeoutError, match="deadline"):
        await trident_client.submit(sync_sleep, 2, timeout=0.1, pure=False)
    with pytest.raises(TimeoutError, match="deadline"):
        await trident_client.submit(sleeper, 30, "deadline", timeout=0.1, pure=False)
    await wait_for(["deadline"])  # the async task really was cancelled on the worker
    assert await trident_client.submit(sleeper, 0.01, "in-time", timeout=5, pure=False) == "in-time"


async def test_deadlines_apply_to_map_and_retries_retry_them(trident_client):
    futures = trident_client.map(sleeper, [0.01, 30], ["quick", "stuck"], timeout=0.2)
    assert await futures[0] == "quick"
    with pytest.raises(TimeoutError):
        await futures[1]
    attempts = []

    async def slow_then_fast():
        attempts.append(1)
        await trio.sleep(30 if len(attempts) == 1 else 0)
        return len(attempts)

    assert await trident_client.submit(slow_then_fast, timeout=0.2, retries=1, pure=False) == 2


# --- task groups -------------------------------------------------------------------------


async def test_task_group_waits_for_its_futures(trident_client):
    async with trident_client.task_group() as tg:
        futures = tg.map(sleeper, [0.05, 0.1], ["a", "b"])
        tg.submit(sleeper, 0.05, "c")
    assert all(f.done() for f in tg.futures)
    assert await trident_client.gather(futures) == ["a", "b"]


async def test_a_failure_cancels_the_group_and_raises_an_exception_group(trident_client):
    reached_end_of_body = False
    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 (the group's exit raises)
        async with trident_client.task_group() as tg:
            # Two workers with one slot each: one sibling, and the task that fails.
            slow = [tg.submit(sleeper, 30, "tg-sibling-0", pure=False)]
            tg.submit(fail_later, 0.1, "one failed", pure=False)
            await trio.sleep(30)  # the failure cancels the body too
            reached_end_of_body = True
    assert not reached_end_of_body
    assert [str(e) for e in info.value.exceptions] == ["one failed"]
    assert all(f.cancelled() for f in slow)
    await wait_for(["tg-sibling-0"])  # cancelled on the worker


async def running_tasks(client) -> int:
    """Runs in progress, seceded ones (a parent waiting for its children) included."""
    states = [h.worker.state for h in client.cluster.workers.values()]
    return sum(len(state.executing) + len(state.seceded) for state in states)


async def test_an_error_in_the_body_cancels_the_remote_work(trident_client):
    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 (the group's exit raises)
        async with trident_client.task_group() as tg:
            tg.submit(sleeper, 30, "body-error", pure=False)
            await wait_until(lambda: running_tasks(trident_client))
            raise KeyError("body")
    assert isinstance(info.value.exceptions[0], KeyError)
    await wait_for(["body-error"])


async def test_an_outer_cancel_scope_cancels_the_group_remotely(trident_client):
    with trio.move_on_after(0.2) as scope:
        async with trident_client.task_group() as tg:
            future = tg.submit(sleeper, 30, "outer-scope", pure=False)
            await future
    assert scope.cancelled_caught
    await wait_for(["outer-scope"])
    assert future.cancelled()
    assert await trident_client.submit(sleeper, 0, "still-usable", pure=False) == "still-usable"


async def test_fail_after_around_an_awaited_future_in_a_group(trident_client):
    with pytest.raises(trio.TooSlowError):  # noqa: PT012 (the group's exit raises)
        with trio.fail_after(0.2):
            async with trident_client.task_group() as tg:
                await tg.submit(sleeper, 30, "fail-after", pure=False)
    await wait_for(["fail-after"])


# --- subtasks belong to their parent --------------------------------------------------------


@pytest.fixture
async def roomy_client():
    """Four task slots for a parent and its children."""
    async with (
        in_process_cluster(n_workers=2, threads_per_worker=2) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        yield client


async def test_cancelling_a_parent_cancels_its_subtasks(roomy_client):
    parent = roomy_client.submit(parent_with_children, "cancel-parent", 2, pure=False)
    with trio.fail_after(10):
        while await running_tasks(roomy_client) < 3:
            await trio.sleep(0.005)
    await parent.cancel()
    await wait_for(["cancel-parent-child-0", "cancel-parent-child-1"])


async def test_fire_and_forget_children_outlive_a_cancelled_parent(roomy_client):
    parent = roomy_client.submit(parent_with_children, "keep", 2, True, pure=False)
    with trio.fail_after(10):
        while await running_tasks(roomy_client) < 3:
            await trio.sleep(0.005)
    await parent.cancel()
    await wait_for(["keep-child-1"])
    await trio.sleep(0.1)
    assert "keep-child-0" not in finished


async def test_a_failing_sync_parent_cancels_its_subtasks(roomy_client):
    with pytest.raises(RuntimeError, match="gave up"):
        await roomy_client.submit(sync_parent_that_fails, "sync-parent", pure=False)
    await wait_for(["sync-parent-child"])


async def test_closing_a_client_cancels_its_work(trident_cluster):
    async with Client(trident_cluster, asynchronous=True, set_as_default=False) as client:
        future = client.submit(sleeper, 30, "closing-client", pure=False)
        with trio.fail_after(10):
            while not any(h.worker.state.executing for h in trident_cluster.workers.values()):
                await trio.sleep(0.005)
    await wait_for(["closing-client"])
    with pytest.raises(CancelledError):
        await future
