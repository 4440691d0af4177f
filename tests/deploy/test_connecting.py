"""After ``trident up`` in one terminal, connecting from another needs no token typed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli import run, trident  # noqa: F401  (`run` is a fixture)
from trident import Client
from trident._scheduler_file import read_scheduler_file


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home directory (for ``~/.trident``) for this test and its commands."""
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    return directory


def _address(command) -> str:
    match = re.search(r"scheduler\s+(tcp://\S+|tls://\S+)", command.out)
    assert match, command.out
    return match.group(1)


def test_a_client_and_info_reach_up_by_address_alone(run, home):  # noqa: F811
    up = run("up", "--workers", "1", "--no-dashboard")
    up.wait_for_output("press Ctrl-C to stop")
    address = _address(up)
    port = address.rpartition(":")[2]
    assert f'Client("{address}")' in up.out
    for form in (address, f"tcp://localhost:{port}"):
        with Client(form, timeout=20, set_as_default=False) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
    worker = run("worker", f"tcp://localhost:{port}", "--name", "extra", "--no-nanny")
    worker.wait_for_output("press Ctrl-C to stop")
    info = trident("info", address, "--json")
    assert info.returncode == 0, info.stderr
    assert len(json.loads(info.stdout)["workers"]) == 2
    worker.stop()
    up.stop()


def test_a_second_up_gets_its_own_scheduler_file(run, home):  # noqa: F811
    default = home / ".trident" / "scheduler.json"
    first = run("up", "--workers", "0", "--no-dashboard")
    first.wait_for_output("press Ctrl-C to stop")
    first_address = _address(first)
    assert read_scheduler_file(default)[0] == first_address

    second = run("up", "--workers", "0", "--no-dashboard")
    second.wait_for_output("press Ctrl-C to stop")
    second_address = _address(second)
    own = home / ".trident" / f"scheduler-{second_address.rpartition(':')[2]}.json"
    assert f"scheduler file  {own}" in second.out
    assert read_scheduler_file(default)[0] == first_address  # not overwritten
    assert read_scheduler_file(own)[0] == second_address

    # The first one stops: the default file now names the one still running.
    first.stop()
    assert read_scheduler_file(default)[0] == second_address
    with Client(scheduler_file=str(default), timeout=20, set_as_default=False) as client:
        assert client.scheduler_address == second_address
        assert client.scheduler_info()["workers"] == {}
    second.stop()
    assert not own.exists()
    assert not default.exists()


def test_the_printed_dashboard_link_logs_the_browser_in(run, home):  # noqa: F811
    up = run("up", "--workers", "0", "--dashboard-port", "0")
    up.wait_for_output("press Ctrl-C to stop")
    _, security = read_scheduler_file(home / ".trident" / "scheduler.json")
    match = re.search(r"dashboard\s+(http://\S+)", up.out)
    assert match, up.out
    link = match.group(1)
    assert "?login=" in link
    assert security.token not in up.out  # the link opens the dashboard and nothing else
    no_redirects = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        no_redirects.open(link, timeout=10)
    assert redirect.value.code == 303
    cookie = redirect.value.headers["set-cookie"].split(";")[0]
    assert redirect.value.headers["location"] == "/status"
    base = link.split("/status")[0]
    request = urllib.request.Request(f"{base}/status", headers={"cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as page:
        assert page.status == 200
    # Without it: a form to paste the token, which logs in too.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/status", timeout=10)
    assert refused.value.code == 401
    body = refused.value.read().decode()
    assert "<form" in body
    assert "name=token" in body
    with pytest.raises(urllib.error.HTTPError) as pasted:
        no_redirects.open(f"{base}/status?token={security.token}", timeout=10)
    assert pasted.value.code == 303
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(f"{base}/status?login=0123", timeout=10)
    assert wrong.value.code == 403
    up.stop()


def test_print_credentials_gives_a_remote_worker_what_it_needs(run, home, tmp_path):  # noqa: F811
    scheduler = run("scheduler", "--host", "0.0.0.0", "--port", "0", "--print-credentials")
    scheduler.wait_for_output("press Ctrl-C to stop")
    match = re.search(r"TRIDENT_TOKEN='(\S+)' trident worker (tls://\S+)", scheduler.out)
    assert match, scheduler.out
    credential, address = match.groups()
    # "Another machine": no scheduler file, no runtime directory of the cluster's owner.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    env = {"HOME": str(elsewhere), "TRIDENT_RUNTIME_DIR": str(elsewhere)}
    refused = trident("info", address, env=env)
    assert refused.returncode != 0
    worker = run("worker", address, "--name", "remote", env={**env, "TRIDENT_TOKEN": credential})
    worker.wait_for_output("press Ctrl-C to stop", timeout=30)
    with Client(address, security=credential, timeout=20, set_as_default=False) as client:
        client.wait_for_workers(1, timeout=30)
        assert client.submit(sum, [2, 3]).result(timeout=30) == 5
    worker.stop()
    scheduler.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_the_getting_started_walkthrough_runs(run, home, tmp_path):  # noqa: F811
    """docs/getting-started.md: ``trident up`` in one terminal, its code in another."""
    guide = (Path(__file__).parents[2] / "docs" / "getting-started.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.S)
    (second_terminal,) = [b for b in blocks if 'Client("tcp://127.0.0.1:40457")' in b]
    up = run("up", "--workers", "2", "--no-dashboard")
    up.wait_for_output("press Ctrl-C to stop")
    script = tmp_path / "second_terminal.py"
    script.write_text(second_terminal.replace("tcp://127.0.0.1:40457", _address(up)))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    client_line, total = result.stdout.splitlines()
    assert client_line.startswith(f"<Client: scheduler='{_address(up)}' workers=2")
    assert total == "332833500"
    up.stop()
