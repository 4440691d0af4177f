"""The dashboard over real HTTP against an in-process cluster running tasks."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from trident import Client
from trident.testing import in_process_cluster

from .httpclient import fetch, fetch_blocking

TOKEN = "sesame"


def inc(x):
    return x + 1


def boom(x):
    raise ValueError(f"boom {x}")


@pytest.fixture
async def cluster():
    async with in_process_cluster(token=TOKEN, dashboard_address=0) as cluster:
        yield cluster


def base_url(cluster) -> str:
    return f"http://{cluster.scheduler.dashboard_address}"


BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_token_is_asked_for_once_then_kept_in_a_cookie(cluster):
    with trio.fail_after(10):
        base = base_url(cluster)
        assert (await fetch(base + "/status")).status == 401
        assert (await fetch(base + "/status?token=wrong")).status == 403
        assert (await fetch(base + "/metrics", {"Authorization": "Bearer nope"})).status == 403
        login = await fetch(base + "/status?token=" + TOKEN)
        assert login.status == 303
        assert login.headers["location"] == "/status"
        cookie = login.headers["set-cookie"].split(";")[0]
        assert TOKEN not in cookie
        assert "HttpOnly" in login.headers["set-cookie"]
        page = await fetch(base + "/status", {"Cookie": cookie})
        assert page.status == 200
        assert b"trident dashboard" in page.body
        assert "script-src" not in page.headers["content-security-policy"]  # default-src
        assert (await fetch(base + "/workers", {"Cookie": cookie})).status == 200
        assert (await fetch(base + "/status", {"Cookie": cookie + "x"})).status == 403
        assert (await fetch(base + "/health")).text() == "ok\n"
        assert (await fetch(base + "/static/dashboard.js")).status == 200


async def test_without_a_token_the_dashboard_is_open():
    with trio.fail_after(10):
        async with in_process_cluster(token=None, dashboard_address=0) as cluster:
            assert (await fetch(base_url(cluster) + "/api/summary.json")).status == 200


async def test_json_endpoints_describe_workers_tasks_and_errors(cluster):
    with trio.fail_after(10):
        async with Client(cluster, asynchronous=True, set_as_default=False) as client:
            futures = client.map(inc, range(50))
            assert await client.gather(futures) == list(range(1, 51))
            failed = client.submit(boom, 1)
            with pytest.raises(ValueError, match="boom"):
                await failed
            base = base_url(cluster)
            summary = json.loads((await fetch(base + "/api/summary.json", BEARER)).body)
            assert summary["workers"] == 2
            assert summary["threads"] == 2
            assert summary["finished_total"] == 50
            assert summary["failed_total"] == 1
            assert summary["tasks"] == {"memory": 50, "erred": 1}
            workers = json.loads((await fetch(base + "/api/workers.json", BEARER)).body)
            assert sorted(w["name"] for w in workers) == ["0", "1"]
            assert sum(w["keys"] for w in workers) == 50
            progress = json.loads((await fetch(base + "/api/progress.json", BEARER)).body)
            rows = {row["prefix"]: row for row in progress}
            assert rows["inc"]["done"] == 50
            assert rows["inc"]["memory"] == 50
            assert rows["boom"]["erred"] == 1
            stream = json.loads((await fetch(base + "/api/task-stream.json?since=40", BEARER)).body)
            assert stream["cursor"] == 51
            assert len(stream["events"]) == 11
            key, prefix, worker, start, stop, status = stream["events"][-1]
            assert key == failed.key
            assert worker in client.nthreads()
            assert prefix == "boom"
            assert status == "error"
            assert stop >= start
            errors = json.loads((await fetch(base + "/api/errors.json", BEARER)).body)
            (error,) = errors["errors"]
            assert error["prefix"] == "boom"
            assert "ValueError: boom 1" in error["text"]
            assert "Traceback" in error["text"]
            assert (await fetch(base + "/api/nothing.json", BEARER)).status == 404


async def test_metrics_are_in_the_prometheus_text_format(cluster):
    with trio.fail_after(10):
        async with Client(cluster, asynchronous=True, set_as_default=False) as client:
            futures = client.map(inc, range(20))
            await client.gather(futures)
            response = await fetch(base_url(cluster) + "/metrics", BEARER)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("trident_tasks", (("state", "memory"),))] == 20
    assert samples[("trident_workers", ())] == 2
    assert samples[("trident_transitions_total", ())] >= 40
    assert samples[("trident_tasks_completed_total", (("outcome", "finished"),))] == 20
    assert ("trident_event_loop_lag_seconds", ()) in samples
    assert ("trident_transitions_per_second", ()) in samples
    assert ("trident_spilled_bytes", ()) in samples
    assert samples[("trident_stored_bytes", ())] >= 0


def read_events(url: str, headers: dict[str, str], count: int) -> list[dict]:
    """Read `count` server-sent events (blocking)."""
    request = urllib.request.Request(url, headers=headers)
    events = []
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"] == "text/event-stream"
        data = b""
        while len(events) < count:
            line = response.readline()
            if line.startswith(b"data: "):
                data += line[len(b"data: ") :]
            elif line == b"\n" and data:
                events.append(json.loads(data))
                data = b""
    return events


async def test_pages_get_live_updates_with_new_task_events(cluster):
    cluster.scheduler.dashboard.feed.tick = 0.05
    with trio.fail_after(20):
        async with Client(cluster, asynchronous=True, set_as_default=False) as client:
            await client.gather(client.map(inc, range(10)))
            url = base_url(cluster) + "/api/events"

            async def submit_more():
                await trio.sleep(0.3)
                await client.gather(client.map(inc, range(100, 130)))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(submit_more)
                events = await trio.to_thread.run_sync(read_events, url, BEARER, 12)
    first, *later = events
    assert first["initial"]
    assert len(first["stream"]) == 10
    assert first["stream_end"] == 10
    assert first["summary"]["workers"] == 2
    assert not any(update["initial"] for update in later)
    # Events carry their position (stream_end counts back): pages drop what they saw.
    seen = set()
    for update in events:
        end, rows = update["stream_end"], update["stream"]
        seen.update(range(end - len(rows) + 1, end + 1))
    assert seen == set(range(1, 41))
    assert later[-1]["stream_end"] == 40
    assert later[-1]["summary"]["finished_total"] == 40
    assert {row["prefix"] for row in later[-1]["progress"]} == {"inc"}


async def test_a_taken_port_falls_back_to_a_free_one(caplog):
    caplog.set_level(logging.WARNING, logger="trident.dashboard")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with trio.fail_after(10):
            async with in_process_cluster(dashboard_address=port) as cluster:
                address = cluster.scheduler.dashboard_address
                assert address.startswith("127.0.0.1:")
                assert not address.endswith(f":{port}")
                assert cluster.dashboard_link.startswith(f"http://{address}/status?token=")
    assert any("not available" in r.getMessage() for r in caplog.records)


async def test_the_client_knows_the_dashboard_link(cluster):
    with trio.fail_after(10):
        async with Client(cluster, asynchronous=True, set_as_default=False) as client:
            link = client.dashboard_link
            assert link == cluster.dashboard_link
            assert link == f"{base_url(cluster)}/status?token={TOKEN}"
            assert (await fetch(link)).status == 303


async def test_no_dashboard_means_no_link():
    with trio.fail_after(10):
        async with in_process_cluster() as cluster:
            assert cluster.dashboard_link is None
            async with Client(cluster, asynchronous=True, set_as_default=False) as client:
                assert client.dashboard_link is None
                assert (await client.scheduler_info())["services"] == {}


async def test_the_http_server_speaks_plain_http(cluster):
    with trio.fail_after(10):
        base = base_url(cluster)
        head = await fetch(base + "/health", method="HEAD")
        assert head.status == 200
        assert head.body == b""
        assert (await fetch(base + "/health", method="POST")).status == 405
        host, port = cluster.scheduler.dashboard_address.rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            await stream.send_all(request + request)  # two requests, one connection
            received = b""
            while received.count(b"ok\n") < 2:
                received += await stream.receive_some(4096)
            assert received.count(b"HTTP/1.1 200") == 2
        garbage = await trio.open_tcp_stream(host, int(port))
        async with garbage:
            await garbage.send_all(b"\x00\x01 nonsense\r\n\r\n")
            reply = await garbage.receive_some(4096)
            assert reply.startswith(b"HTTP/1.1 400")


def test_a_blocking_local_cluster_serves_a_dashboard_by_default():
    from trident import LocalCluster

    with LocalCluster(n_workers=1, processes=False, memory_limit=None) as cluster:
        link = cluster.dashboard_link
        assert link is not None
        assert link.startswith("http://127.0.0.1:")
        with Client(cluster) as client:
            assert client.dashboard_link == link
        assert fetch_blocking(link).status == 303
