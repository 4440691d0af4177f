"""`get_task_stream`: dask's context manager, blocking and asynchronous."""

from __future__ import annotations

import time

import pytest

from trident import Client, get_task_stream


def inc(x: int) -> int:
    return x + 1


def fail(x: int) -> int:
    raise ValueError(x)


def test_the_block_collects_its_runs_with_dasks_fields(trident_blocking_client, tmp_path):
    client = trident_blocking_client
    client.gather(client.map(inc, range(3), key=[f"before-{i}" for i in range(3)]))
    with get_task_stream() as ts:  # the default client
        futures = client.map(inc, range(5))
        assert client.gather(futures) == [1, 2, 3, 4, 5]
    keys = {record["key"] for record in ts.data}
    assert keys == {f.key for f in futures}, "only the runs of the block"
    record = ts.data[0]
    assert set(record) >= {"key", "name", "worker", "status", "startstops"}
    assert record["name"] == "inc"
    assert record["status"] == "OK"
    (span,) = record["startstops"]
    assert span["action"] == "compute"
    assert span["start"] <= span["stop"] <= time.time()
    assert ts.figure is None

    page = tmp_path / "stream.html"
    with get_task_stream(client=client, plot="save", filename=str(page)) as ts:
        bad = client.submit(fail, 1)
        with pytest.raises(ValueError, match="1"):
            bad.result()
    assert [r["status"] for r in ts.data] == ["error"]
    assert ts.figure is not None
    assert bad.key in ts.figure._repr_html_()
    text = page.read_text()
    assert bad.key in text
    assert "<svg" in text


def test_plot_must_be_a_known_value(trident_blocking_client):
    with pytest.raises(ValueError, match="plot"):
        get_task_stream(client=trident_blocking_client, plot="show")


async def test_async_with_on_an_asynchronous_client(trident_client):
    async with get_task_stream(client=trident_client, plot=True) as ts:
        futures = trident_client.map(inc, range(4))
        assert await trident_client.gather(futures) == [1, 2, 3, 4]
    assert {r["key"] for r in ts.data} == {f.key for f in futures}
    assert ts.figure is not None
    assert "<svg" in ts.figure.svg
    with pytest.raises(TypeError, match="async with"), get_task_stream(client=trident_client):
        pass


def test_asyncio_program_uses_async_with(trident_cluster_options):
    import asyncio

    async def main() -> list[dict]:
        async with Client(
            asynchronous=True, processes=False, dashboard_address=None, **trident_cluster_options
        ) as client:
            async with get_task_stream(client=client) as ts:
                await client.submit(inc, 41)
            return ts.data

    (record,) = asyncio.run(main())
    assert record["name"] == "inc"
