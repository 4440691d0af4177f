"""`performance_report`: one self-contained HTML file, written by ``with`` and
``async with``, that holds the run's data and opens offline in Chromium."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from trident import performance_report
from trident.diagnostics.report_html import profile_svg, task_stream_svg

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

#: What would make the page load something from elsewhere.
EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def busy(x: int) -> int:
    deadline = time.perf_counter() + 0.03
    while time.perf_counter() < deadline:
        pass
    return x


def total(values: list[int]) -> int:
    return sum(values)


def report_data(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text)
    assert found, "the report embeds its data"
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_a_blocking_block_writes_one_offline_page_with_its_data(trident_blocking_client, tmp_path):
    client = trident_blocking_client
    first, second = sorted(client.scheduler_info()["workers"])
    filename = tmp_path / "report.html"
    with performance_report(filename=str(filename)):
        parts = client.map(busy, range(8), workers=[first])
        summed = client.submit(total, parts, workers=[second])  # moves 8 values over
        assert summed.result() == 28

    text = filename.read_text()
    assert not EXTERNAL.search(text), "nothing is loaded from elsewhere"
    assert "<script src" not in text
    assert "<link" not in text
    data = report_data(text)
    summary = data["summary"]
    assert summary["tasks"] == 9
    assert summary["failed"] == 0
    assert [p["prefix"] for p in summary["prefixes"]] == ["busy", "total"]
    assert summary["prefixes"][0]["tasks"] == 8
    assert summary["prefixes"][0]["compute_time"] >= 8 * 0.03
    assert summary["transfer_by_worker"][first] == 0
    assert summary["transfer_by_worker"][second] > 0
    assert summary["transfer_bytes"] == summary["transfer_by_worker"][second]
    assert summary["workers"] == 2
    assert "performance_report(filename=str(filename))" in summary["code"]
    assert "summed.result() == 28" in summary["code"], "the whole with statement"
    assert {r["key"] for r in data["task_stream"]} == {summed.key, *(p.key for p in parts)}
    assert data["profile"]["count"] > 0, "busy was sampled while it ran"
    assert "busy" in json.dumps(data["profile"])
    for key in (summed.key, parts[0].key):
        assert key in text.split('<script type="application/json"')[0], "drawn, not only data"


def test_the_report_is_written_when_the_block_raises(trident_blocking_client, tmp_path):
    filename = tmp_path / "failed.html"
    with pytest.raises(ZeroDivisionError), performance_report(filename=filename):
        raise ZeroDivisionError
    assert report_data(filename.read_text())["summary"]["tasks"] == 0


async def test_async_with_on_an_asynchronous_client(trident_client, tmp_path):
    filename = tmp_path / "async.html"
    async with performance_report(filename=str(filename), client=trident_client):
        assert await trident_client.submit(busy, 5) == 5
    data = report_data(filename.read_text())
    assert data["summary"]["tasks"] == 1
    assert data["task_stream"][0]["name"] == "busy"
    with pytest.raises(TypeError, match="async with"), performance_report(client=trident_client):
        pass


def test_drawings_of_empty_data_say_so():
    assert "No task ran" in task_stream_svg([])
    assert "No samples" in profile_svg({})


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed")
def test_the_report_renders_offline_in_chromium(trident_blocking_client, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.dashboard.test_browser import CHROMIUM_ARGS

    client = trident_blocking_client
    filename = tmp_path / "report.html"
    with performance_report(filename=str(filename)):
        client.gather(client.map(busy, range(6)))

    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.on("request", lambda request: requested.append(request.url))
            page.goto(filename.as_uri())
            expect(page.locator("h1")).to_have_text("trident performance report")
            expect(page.locator("svg.task-stream rect")).to_have_count(6)
            expect(page.locator("#summary")).to_contain_text("Tasks")
            expect(page.locator("#prefixes")).to_contain_text("busy")
            assert page.locator("svg.profile rect").count() > 1
            box = page.locator("svg.task-stream").bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert box["height"] > 10
            page.screenshot(path=str(ARTIFACTS / "performance-report.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert requested == [filename.as_uri()], "the page asked for nothing else"
