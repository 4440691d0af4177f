"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

Loads the page against a live cluster running tasks, checks that workers and task
counts appear and update without reloading, and saves screenshots under
``tests/artifacts/`` (printed at the end; kept out of git).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from trident import Client, LocalCluster

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
#: What this machine's Chromium needs to start as root without a network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
)


def slow(x):
    time.sleep(0.04)
    return x


def broken(x):
    raise ValueError(f"broken input {x}")


def finished_count(page) -> int:
    return int(page.locator("#stat-finished").inner_text().replace(",", "") or 0)


def wait_for_count(page, accept, timeout: float = 15.0) -> int:
    """Poll the page's finished-task count (the page's CSP forbids evaluated scripts)."""
    deadline = time.monotonic() + timeout
    while True:
        count = finished_count(page)
        if accept(count):
            return count
        if time.monotonic() > deadline:
            raise AssertionError(f"finished count stuck at {count}")
        page.wait_for_timeout(50)


def test_the_dashboard_shows_a_live_cluster_in_chromium():
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=False,
            memory_limit="2GiB",
            dashboard_address=0,
        ) as cluster,
        Client(cluster) as client,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))

            page.goto(cluster.dashboard_link)  # carries the token once
            assert page.url.endswith("/status")  # token gone from the URL, cookie kept
            expect(page.locator("#connection")).to_have_text("live")
            expect(page.locator("#stat-workers")).to_have_text("2")
            expect(page.locator("#stat-threads")).to_have_text("4")

            futures = client.map(slow, range(300))
            first = wait_for_count(page, lambda n: n >= 20)
            assert first < 300
            expect(page.locator("#stat-processing")).not_to_have_text("0")
            wait_for_count(page, lambda n: n > first)  # it updates live, without a reload
            expect(page.locator("#progress [data-prefix=slow]")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard-status-running.png"))

            assert client.gather(futures) == list(range(300))
            expect(page.locator("#stat-finished")).to_have_text("300")
            expect(page.locator("#progress [data-prefix=slow] .counts")).to_contain_text("300 done")
            expect(page.locator("#memory .row")).to_have_count(2)
            page.screenshot(path=str(ARTIFACTS / "dashboard-status.png"))

            page.click("nav a[data-view=workers]")
            assert page.url.endswith("/workers")
            rows = page.locator("#workers-table tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.first).to_contain_text("2.0 GiB")
            expect(rows.first.locator("td").last).to_have_text(re.compile(r"\d+\.\d s ago"))
            page.screenshot(path=str(ARTIFACTS / "dashboard-workers.png"))

            failed = client.submit(broken, 7)
            with pytest.raises(ValueError, match="broken input"):
                failed.result()
            expect(page.locator("#error-badge")).to_have_text("1")
            page.click("nav a[data-view=errors]")
            expect(page.locator("#errors pre")).to_contain_text("ValueError: broken input 7")
            expect(page.locator("#errors .key")).to_have_text(failed.key)
            page.screenshot(path=str(ARTIFACTS / "dashboard-errors.png"))
            assert errors == []
        finally:
            browser.close()
    print(f"dashboard screenshots in {ARTIFACTS}")


def test_the_link_trident_up_prints_logs_chromium_in(tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from tests.test_cli import Command
    from trident._scheduler_file import read_scheduler_file

    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    up = Command(["up", "--workers", "1", "--dashboard-port", "0"], tmp_path)
    try:
        up.wait_for_output("press Ctrl-C to stop")
        match = re.search(r"dashboard\s+(http://\S+)", up.out)
        assert match, up.out
        link = match.group(1)
        base = link.split("/status")[0]
        _, security = read_scheduler_file(home / ".trident" / "scheduler.json")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                # The printed link logs in: the page loads live, its key gone from the URL.
                page = browser.new_context().new_page()
                page.set_default_timeout(15_000)
                page.goto(link)
                assert page.url == f"{base}/status"
                expect(page.locator("#connection")).to_have_text("live")
                expect(page.locator("#stat-workers")).to_have_text("1")

                # Another browser without it gets the form, and the pasted token logs in.
                page = browser.new_context().new_page()
                page.set_default_timeout(15_000)
                response = page.goto(f"{base}/status")
                assert response is not None
                assert response.status == 401
                page.fill("input[name=token]", security.token)
                page.click("button[type=submit]")
                expect(page.locator("#connection")).to_have_text("live")
                assert page.url == f"{base}/status"
                page.screenshot(path=str(ARTIFACTS / "dashboard-after-login.png"))
            finally:
                browser.close()
        up.stop()
    finally:
        up.kill()
