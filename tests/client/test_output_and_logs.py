"""Task output forwarded to clients, and the logs of the scheduler and workers."""

from __future__ import annotations

import logging
import sys
import threading
import time

import pytest
import trio

from trident import Client, LocalCluster
from trident.testing import in_process_cluster


def chatty(n):
    for i in range(3):
        print(f"task {n} line {i}")
        time.sleep(0.001)
    print(f"to stderr {n}", file=sys.stderr)
    logging.getLogger("tests.chatty").warning("warned %d", n)
    return n


async def chatty_async(n):
    for i in range(3):
        print(f"async {n} line {i}")
        await trio.sleep(0.001)
    return n


def silent(n):
    return n


def lines_of(text, marker):
    return sorted(line for line in text.splitlines() if marker in line)


async def test_print_and_logging_are_forwarded_with_worker_and_key(capsys, caplog):
    caplog.set_level(logging.WARNING, logger="tests.chatty")
    with trio.fail_after(10):
        async with (
            in_process_cluster(threads_per_worker=2) as cluster,
            Client(
                cluster, asynchronous=True, set_as_default=False, forward_logging=True
            ) as client,
        ):
            futures = client.map(chatty, range(4)) + client.map(chatty_async, range(4))
            await client.gather(futures)
            await trio.sleep(0.05)
            keys = {f.key for f in futures}
    out, err = capsys.readouterr()
    for n in range(4):
        key = futures[n].key
        mine = [line for line in out.splitlines() if f" {key}] task {n} " in line]
        assert [line.split("] ", 1)[1] for line in mine] == [f"task {n} line {i}" for i in range(3)]
        assert mine[0].startswith("[0 ") or mine[0].startswith("[1 ")
        assert f" {key}] to stderr {n}" in err
        async_key = futures[4 + n].key
        assert len([line for line in out.splitlines() if f" {async_key}] async {n} " in line]) == 3
    assert len(keys) == 8
    forwarded = [r.getMessage() for r in caplog.records if r.name == "tests.chatty"]
    assert sorted(m.split("] ", 1)[1] for m in forwarded if "] " in m) == [
        f"warned {n}" for n in range(4)
    ]
    assert sys.stdout is not None
    assert type(sys.stdout).__name__ != "StreamRouter"


async def test_output_is_not_forwarded_unless_asked(capsys):
    with trio.fail_after(10):
        async with (
            in_process_cluster() as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            assert await client.submit(chatty, 7) == 7
            out, _ = capsys.readouterr()
            assert "task 7 line 0" in out
            assert "] task 7" not in out
            await client.forward_logging()
            await trio.sleep(0.05)  # the workers hear of it
            assert await client.submit(chatty, 8) == 8
            await trio.sleep(0.05)
            out, _ = capsys.readouterr()
            assert "] task 8 line 0" in out
            await client.unforward_logging()
            await trio.sleep(0.05)
            assert await client.submit(chatty, 9) == 9
            out, _ = capsys.readouterr()
            assert "task 9 line 0" in out
            assert "] task 9" not in out


async def test_forward_logging_filters_by_logger_and_level(caplog):
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(10):
        async with (
            in_process_cluster() as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            client.forward_logging("tests.chatty", level=logging.ERROR)
            await trio.sleep(0.05)
            assert await client.submit(chatty, 1) == 1
            await trio.sleep(0.05)
    assert not [
        r for r in caplog.records if "warned 1" in r.getMessage() and "] " in r.getMessage()
    ]


def test_the_blocking_client_forwards_output_from_worker_processes(capfd):
    with (
        LocalCluster(n_workers=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster, forward_logging=True) as client,
    ):
        assert client.submit(chatty, 5).result() == 5
        time.sleep(0.2)
    out, _ = capfd.readouterr()
    assert [line.split("] ", 1)[1] for line in out.splitlines() if "] task 5" in line] == [
        "task 5 line 0",
        "task 5 line 1",
        "task 5 line 2",
    ]
    # Captured on the worker: not printed there a second time.
    assert out.count("task 5 line 0") == 1


async def test_scheduler_and_worker_logs_are_kept_per_actor(caplog):
    caplog.set_level(logging.INFO, logger="trident")
    with trio.fail_after(10):
        async with (
            in_process_cluster(n_workers=2) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            await client.submit(silent, 1)
            logs = await client.get_scheduler_logs()
            assert all(isinstance(record, tuple) and len(record) == 2 for record in logs)
            messages = [text for _, text in logs]
            assert any("registered" in text for text in messages)
            assert any("client" in text and "connected" in text for text in messages)
            assert len(await client.get_scheduler_logs(n=1)) == 1
            worker_logs = await client.get_worker_logs()
            assert set(worker_logs) == set(client.nthreads())
            for address, records in worker_logs.items():
                texts = [text for _, text in records]
                assert any(f"worker {address}: registered" in text for text in texts)
                assert not any("registered" in text and address not in text for text in texts), (
                    "another worker's records leaked in"
                )
            (name,) = [w.name for w in cluster.workers.values()][:1]
            only = await client.get_worker_logs(workers=[name])
            assert len(only) == 1


def test_the_blocking_client_gets_logs_from_worker_processes():
    with (
        LocalCluster(n_workers=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        (records,) = client.get_worker_logs(n=5).values()
        assert any("registered" in text for _, text in records)
        assert isinstance(client.get_scheduler_logs(), list)


def test_capture_routes_threads_separately():
    from trident.worker import output

    collector = output.OutputCollector()
    output.install()
    try:
        barrier = threading.Barrier(2)

        def work(key):
            with output.capture_output(key, collector):
                barrier.wait()
                for i in range(50):
                    print(key, i)

        threads = [threading.Thread(target=work, args=(k,)) for k in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        output.uninstall()
    entries = collector.drain()
    for key in ("a", "b"):
        assert [e.text for e in entries if e.key == key] == [f"{key} {i}" for i in range(50)]
    assert not isinstance(sys.stdout, output.StreamRouter)


@pytest.mark.parametrize("text", ["no newline", "a\nb\n", "x" * 40_000])
def test_partial_and_long_lines(text):
    from trident.worker import output

    collector = output.OutputCollector()
    capture = output.TaskCapture("k", collector)
    capture.write("stdout", text)
    capture.close()
    joined = "".join(e.text for e in collector.drain())
    assert joined == text.replace("\n", "")
