"""An async crawler-style fan-out under trio, with a deadline.

Each page is fetched by an ``async def`` task running in a worker's trio loop; the links
it finds are fetched next. Fetching is simulated (a seeded random link graph and
latency) so the example needs no network. The whole crawl has a deadline: a cancel
scope around the loop. When it expires, the fetches still running are cancelled on the
workers, where their own cancel scopes stop them at once.

Run with ``python examples/crawler.py [DEADLINE_SECONDS]``.
"""

from __future__ import annotations

import random
import sys

import trio

from trident import Client, as_completed

PAGES = 5_000
LINKS_PER_PAGE = 4


async def fetch(url: str) -> dict:
    """Pretend to download `url`: wait a while, return its links."""
    page = int(url.rsplit("/", 1)[1])
    rng = random.Random(page)
    await trio.sleep(rng.uniform(0.01, 0.2))
    links = [f"https://example.test/{rng.randrange(PAGES)}" for _ in range(LINKS_PER_PAGE)]
    return {"url": url, "links": links, "bytes": rng.randrange(2_000, 50_000)}


async def crawl(client: Client, start: str, deadline: float) -> tuple[dict[str, dict], int]:
    """Fetch pages breadth-first from `start` until none are left or `deadline` passes.

    Returns the pages fetched and how many fetches the deadline cancelled.
    """
    fetched: dict[str, dict] = {}
    seen = {start}
    first = client.submit(fetch, start)
    in_flight = {first}
    pending = as_completed([first])
    with trio.move_on_after(deadline):
        async for future in pending:
            in_flight.discard(future)
            page = await future
            fetched[page["url"]] = page
            for link in page["links"]:
                if link not in seen:
                    seen.add(link)
                    new = client.submit(fetch, link)
                    in_flight.add(new)
                    pending.add(new)
    unfinished = [f for f in in_flight if not f.done()]
    if unfinished:
        await client.cancel(unfinished)  # stops them on the workers
    return fetched, len(unfinished)


async def main(deadline: float) -> None:
    # Each running task takes one of its worker's slots (`threads_per_worker`), async ones
    # too: I/O-bound fetches want many slots per worker.
    async with Client(asynchronous=True, n_workers=2, threads_per_worker=16) as client:
        fetched, cancelled = await crawl(client, "https://example.test/0", deadline)
        total = sum(page["bytes"] for page in fetched.values())
        print(f"fetched {len(fetched)} pages ({total:,} bytes) within {deadline} s")
        print(f"cancelled {cancelled} fetches not finished at the deadline")


if __name__ == "__main__":
    trio.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
