"""Structured concurrency across the cluster, under trio.

1. A deadline: a task that runs too long fails with TimeoutError, and its `finally`
   block runs on the worker.
2. A task group: one failing task cancels its siblings on the cluster and the block
   raises an ExceptionGroup, like a trio nursery.
3. A cancel scope around a wait: giving up waiting leaves the work (and the client) alone.

Run with ``python examples/structured_cancellation.py``.
"""

import trio

from trident import Client


async def crawl(url: str, seconds: float) -> str:
    """Stands in for a slow network fetch."""
    try:
        await trio.sleep(seconds)
        return f"{url}: ok"
    finally:
        print(f"  [worker] {url} finished or was cancelled")


async def broken(url: str) -> str:
    await trio.sleep(0.1)
    raise ConnectionError(f"{url}: connection refused")


async def main() -> None:
    async with Client(asynchronous=True, n_workers=2, threads_per_worker=2) as client:
        print("1. a deadline enforced on the worker")
        try:
            await client.submit(crawl, "slow.example", 30, timeout=0.5, pure=False)
        except TimeoutError as error:
            print("  ->", error)

        print("2. a task group: one failure cancels the rest")
        try:
            async with client.task_group() as tg:
                tg.submit(crawl, "a.example", 30, pure=False)
                tg.submit(crawl, "b.example", 30, pure=False)
                tg.submit(broken, "c.example", pure=False)
        except ExceptionGroup as group:
            print("  ->", [repr(e) for e in group.exceptions])

        print("3. a cancel scope only stops the wait")
        future = client.submit(crawl, "d.example", 0.5, pure=False)
        with trio.move_on_after(0.1):
            await future
        print("  -> stopped waiting; the task goes on:", await future)
        await trio.sleep(0.1)  # let the workers' output arrive


if __name__ == "__main__":
    trio.run(main)
