"""The ``trident`` command as users run it: real processes, signals, files and timings."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from trident import Client, __version__
from trident._scheduler_file import read_scheduler_file
from trident.cli import _dashboard_address, build_parser, interface_address, main

TRIDENT = [sys.executable, "-m", "trident"]
READY_LIMIT = 10.0  # generous for a loaded CI machine; about a second when idle
STOP_LIMIT = 5.0


def square(x):
    return x * x


def worker_settings(dask_worker):
    return dask_worker.local_directory, dask_worker.heartbeat_interval, dask_worker.preloaded


def loopback_interface():
    return next(
        name
        for name, addresses in psutil.net_if_addrs().items()
        if any(a.address == "127.0.0.1" for a in addresses)
    )


def shift(xs, by):
    return [x + by for x in xs]


class Command:
    """A ``trident`` process whose output goes to files, so no pipe can fill up."""

    def __init__(self, args, tmp_path, env=None):
        self.out_path = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.txt"
        self.err_path = self.out_path.with_suffix(".err")
        self.started = time.monotonic()
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                [*TRIDENT, *args], stdout=out, stderr=err, env={**os.environ, **(env or {})}
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait_for_output(self, text, timeout=READY_LIMIT) -> float:
        """Seconds from the start until `text` appeared on stdout."""
        deadline = self.started + timeout
        while text not in self.out:
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}: {self.out}{self.err}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} after {timeout} s: {self.out}{self.err}")
            time.sleep(0.02)
        return time.monotonic() - self.started

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, signum=signal.SIGINT) -> float:
        """Signal it; return how long it took to exit (with every process it started)."""
        tree = self.descendants()
        began = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout=STOP_LIMIT * 2)
        _, alive = psutil.wait_procs(tree, timeout=STOP_LIMIT)
        assert alive == [], f"orphans: {alive}"
        return time.monotonic() - began

    def kill(self) -> None:
        if self.process.poll() is None:
            for child in self.descendants():
                child.kill()
            self.process.kill()
            self.process.wait()


@pytest.fixture
def run(tmp_path):
    commands = []

    def start(*args, env=None):
        command = Command(args, tmp_path, env)
        commands.append(command)
        return command

    yield start
    for command in commands:
        command.kill()


def trident(*args, env=None):
    return subprocess.run(
        [*TRIDENT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


# --- help and bad arguments ---------------------------------------------------------------


def run_main(*args):
    """`trident.cli.main` in this process: (exit status, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        pytest.raises(SystemExit) as exit_info,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        main(list(args))
    return exit_info.value.code, stdout.getvalue(), stderr.getvalue()


def test_the_installed_command_runs():
    script = Path(sys.executable).with_name("trident")  # pip puts it next to python
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "trident up" in result.stdout
    result = trident("up", "--workers", "many")
    assert result.returncode == 2
    assert result.stderr == (
        "trident up: error: argument --workers/--nworkers/--n-workers: "
        "expected an integer >= 0, got 'many' (see trident up --help)\n"
    )


COMMAND_OPTIONS = {
    (): ["up", "scheduler", "worker", "info", "examples", "--version"],
    ("up",): ["--workers", "--nworkers", "--nthreads", "--threads", "--memory-limit", "--resources",
              "--local-directory", "--heartbeat-interval", "--host", "--port",
              "--interface", "--protocol", "--scheduler-file", "--dashboard-address",
              "--dashboard-port", "--no-dashboard", "--preload", "--pid-file", "--token",
              "--no-auth", "--tls-ca", "--tls-cert", "--tls-key", "--tls-self-signed",
              "--no-tls", "--verbose"],
    ("scheduler",): ["--host", "--port", "--interface", "--protocol", "--scheduler-file",
                     "--dashboard-address", "--no-dashboard", "--preload", "--pid-file",
                     "--token", "--no-auth", "--tls-self-signed", "--verbose"],
    ("worker",): ["ADDRESS", "--nthreads", "--threads", "--name", "--memory-limit",
                  "--resources", "--local-directory", "--heartbeat-interval", "--nanny",
                  "--no-nanny", "--contact-address", "--listen-address", "--interface",
                  "--protocol", "--reconnect-timeout", "--preload", "--pid-file",
                  "--scheduler-file", "--token", "--tls-ca", "--verbose"],
    ("info",): ["ADDRESS", "--scheduler-file", "--json", "--timeout", "--token", "--verbose"],
}  # fmt: skip


def test_every_command_has_help():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {(name,) for name in commands} | {()} == set(COMMAND_OPTIONS)


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS), ids=lambda c: " ".join(c) or "trident")
def test_help_is_complete(command):
    status, stdout, _ = run_main(*command, "--help")
    assert status == 0
    for word in COMMAND_OPTIONS[command]:
        assert word in stdout, word


def test_version():
    status, stdout, _ = run_main("--version")
    assert status == 0
    assert stdout == f"trident {__version__}\n"


def test_an_unknown_option_names_the_command():
    status, _, stderr = run_main("up", "--bogus")
    assert status == 2
    assert stderr == "trident up: error: unrecognized arguments: --bogus (see trident up --help)\n"


def test_threads_is_an_alias_of_nthreads():
    parser = build_parser()
    for command in ("up", "worker"):
        args = parser.parse_args([command, "--threads", "3"])
        assert args.nthreads == 3
        assert parser.parse_args([command, "--nthreads", "3"]).nthreads == 3


def test_up_takes_dasks_names_for_the_worker_count():
    parser = build_parser()
    for spelling in ("--workers", "--nworkers", "--n-workers"):
        assert parser.parse_args(["up", spelling, "3"]).workers == 3


def test_dashboard_addresses(tmp_path):
    parser = build_parser()
    for given, expected in [
        (["--dashboard-address", "0.0.0.0:9999"], "0.0.0.0:9999"),
        (["--dashboard-address", ":9999"], "127.0.0.1:9999"),
        (["--dashboard-address", "9999"], "127.0.0.1:9999"),
        (["--dashboard-port", "9999"], "127.0.0.1:9999"),
        (["--no-dashboard"], None),
    ]:
        assert _dashboard_address(parser.parse_args(["scheduler", *given])) == expected


def test_interface_addresses():
    assert interface_address(loopback_interface()) == "127.0.0.1"
    with pytest.raises(ValueError, match="no network interface 'nonesuch0'"):
        interface_address("nonesuch0")


BAD_ARGUMENTS = [
    ["up", "--workers", "-1"],
    ["up", "--threads", "zero"],
    ["up", "--memory-limit", "4XB"],
    ["up", "--port", "70000"],
    ["up", "--token", "t", "--no-auth"],
    ["up", "--tls-cert", "cert.pem"],
    ["up", "--tls-self-signed", "--tls-ca", "ca.pem"],
    ["worker", "tcp://127.0.0.1:1", "--resources", "GPU"],
    ["worker", "udp://127.0.0.1:1"],
    ["worker", "tls://127.0.0.1:1", "--token", "t"],
    ["info", "--scheduler-file", "/nonexistent/scheduler.json"],
    ["scheduler", "--interface", "nonesuch0"],
    ["scheduler", "--protocol", "udp"],
    ["scheduler", "--protocol", "tcp", "--tls-self-signed"],
    ["scheduler", "--dashboard-address", "host:port"],
    ["worker", "tcp://127.0.0.1:1", "--protocol", "tcp"],
    ["worker", "tcp://127.0.0.1:1", "--interface", "lo", "--listen-address", "tcp://a:1"],
    ["worker", "tcp://127.0.0.1:1", "--heartbeat-interval", "soon"],
    ["bogus"],
    [],
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=lambda a: " ".join(a) or "nothing")
def test_bad_arguments_give_one_line_and_status_2(args, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    status, stdout, stderr = run_main(*args)
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "error:" in lines[0], stderr
    assert stdout == ""


@pytest.mark.parametrize("command", ["worker", "info"])
def test_worker_and_info_without_an_address_say_what_is_missing(command, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    status, _, stderr = run_main(command)
    assert status == 2
    assert "give the scheduler's ADDRESS or --scheduler-file" in stderr


# --- trident up ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_clients_and_stops_the_whole_tree(run, tmp_path, signum):
    scheduler_file = tmp_path / "scheduler.json"
    up = run("up", "--workers", "2", "--threads", "1", "--scheduler-file", str(scheduler_file))
    ready = up.wait_for_output("press Ctrl-C to stop")
    assert ready < READY_LIMIT
    print(f"trident up ready after {ready:.2f} s")
    assert "2 workers x 1 thread" in up.out
    assert stat.S_IMODE(scheduler_file.stat().st_mode) == 0o600
    address, security = read_scheduler_file(scheduler_file)
    assert address.startswith("tcp://127.0.0.1:")
    assert security.token
    assert security.token not in up.out  # a random token only lives in the file
    assert f'Client(scheduler_file="{scheduler_file}")' in up.out
    with Client(scheduler_file=str(scheduler_file)) as client:
        futures = client.map(square, range(10))
        assert client.submit(sum, futures).result(timeout=30) == 285
        info = client.scheduler_info()
    assert len(info["workers"]) == 2
    assert all(worker["nanny"] for worker in info["workers"].values())
    assert len(up.descendants()) == 2  # the workers; nannies live in the up process
    stopped = up.stop(signum)
    print(f"trident up stopped after {stopped:.2f} s")
    assert stopped < STOP_LIMIT
    assert up.process.returncode == 0
    assert "trident cluster stopped" in up.out
    assert not scheduler_file.exists()


def test_up_restarts_killed_workers_and_client_restart_replaces_them(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    up = run("up", "--workers", "1", "--scheduler-file", str(scheduler_file))
    up.wait_for_output("press Ctrl-C to stop")
    (worker,) = up.descendants()
    worker.kill()
    deadline = time.monotonic() + 30
    while True:
        result = trident("info", "--scheduler-file", str(scheduler_file))
        if "killed by SIGKILL" in result.stdout and "workers    1," in result.stdout:
            break
        assert time.monotonic() < deadline, result.stdout + result.stderr
        time.sleep(0.1)
    assert "worker deaths (1, latest last):" in result.stdout
    assert "workers    1, 1 threads" in result.stdout
    assert "killed by SIGKILL" in up.err  # the scheduler's log
    (restarted,) = up.descendants()
    with Client(scheduler_file=str(scheduler_file)) as client:
        future = client.submit(square, 3)
        assert future.result(timeout=30) == 9
        client.restart()
        assert future.status == "cancelled"
        assert client.submit(square, 4).result(timeout=30) == 16
    (fresh,) = up.descendants()
    assert fresh.pid not in (worker.pid, restarted.pid)
    up.stop()


def test_up_with_self_signed_tls(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    up = run("up", "--workers", "1", "--tls-self-signed", "--scheduler-file", str(scheduler_file))
    up.wait_for_output("press Ctrl-C to stop")
    address, security = read_scheduler_file(scheduler_file)
    assert address.startswith("tls://")
    assert security.tls
    assert security.token
    certificates = Path(security.tls_ca_file).parent
    assert stat.S_IMODE(certificates.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(security.tls_key).stat().st_mode) == 0o600
    with Client(scheduler_file=str(scheduler_file)) as client:
        assert client.submit(square, 7).result(timeout=30) == 49
    up.stop()
    assert not certificates.exists()


def test_up_on_every_interface_without_auth_warns(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    up = run(
        "scheduler", "--host", "0.0.0.0", "--port", "0", "--no-auth", "--no-tls",
        "--scheduler-file", str(scheduler_file),
    )  # fmt: skip
    up.wait_for_output("press Ctrl-C to stop")
    assert "warning: listening on 0.0.0.0 without authentication" in up.err
    assert "(no authentication)" in up.out
    address, security = read_scheduler_file(scheduler_file)
    assert security.token is None
    assert "0.0.0.0" not in address
    up.stop(signal.SIGTERM)


def test_a_scheduler_on_every_interface_serves_tls_by_default(run, tmp_path, monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = run(
        "scheduler", "--host", "0.0.0.0", "--port", "0", "--scheduler-file", str(scheduler_file)
    )  # fmt: skip
    scheduler.wait_for_output("press Ctrl-C to stop")
    assert "(TLS and a token)" in scheduler.out
    address, security = read_scheduler_file(scheduler_file)
    assert address.startswith("tls://")
    assert not security.require_client_cert
    credential = json.loads(scheduler_file.read_text())["credential"]
    assert credential == f"{security.token}#tls-sha256={security.tls_fingerprint}"
    assert security.tls_fingerprint in scheduler.out  # the pin is no secret
    assert security.token not in scheduler.out  # a random token stays in the file
    # The credential alone (no CA file, no client certificate) is enough to connect.
    with Client(address, security=credential, timeout=20) as client:
        assert client.scheduler_info()["workers"] == {}
    wrong = f"{security.token}#tls-sha256={'0' * 64}"
    with pytest.raises(OSError, match="is not the cluster's"):
        Client(address, security=wrong, timeout=5)
    scheduler.stop()


# --- trident scheduler, worker, info ---------------------------------------------------------


def test_scheduler_workers_and_info_by_hand(run, tmp_path, monkeypatch):
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = run(
        "scheduler", "--port", "0", "--token", "by-hand", "--scheduler-file", str(scheduler_file)
    )
    scheduler.wait_for_output("press Ctrl-C to stop")
    address, _ = read_scheduler_file(scheduler_file)
    env = {"TRIDENT_TOKEN": "by-hand"}
    plain = run(
        "worker", address, "--no-nanny", "--name", "plain", "--nthreads", "2",
        "--reconnect-timeout", "0.5", env=env,
    )  # fmt: skip
    nannied = run(
        "worker", "--scheduler-file", str(scheduler_file), "--name", "nannied",
        "--resources", "GPU=1,MEM=10e9", "--memory-limit", "2GB", "--nthreads", "1",
    )  # fmt: skip
    plain.wait_for_output("joined")
    nannied.wait_for_output("joined")
    assert "under a nanny" in nannied.out
    assert "no nanny" in plain.out
    result = trident("info", address, "--token", "by-hand")
    assert result.returncode == 0, result.stderr
    assert "workers    2, 3 threads" in result.stdout
    assert "plain" in result.stdout
    assert "nannied" in result.stdout
    assert "clients    1 (this one included), and 2 of workers for their tasks" in result.stdout
    monkeypatch.setenv("TRIDENT_TOKEN", "by-hand")
    with Client(address) as client:
        data = client.submit(list, range(5), workers=["plain"])
        moved = client.submit(shift, data, 1, workers=["nannied"], resources={"GPU": 1})
        assert moved.result(timeout=30) == [1, 2, 3, 4, 5]
        info = client.scheduler_info()
    nannied_info = next(w for w in info["workers"].values() if w["name"] == "nannied")
    assert nannied_info["resources"] == {"GPU": 1.0, "MEM": 1e10}
    assert nannied_info["memory_limit"] == 2 * 10**9
    nannied.stop(signal.SIGTERM)
    scheduler.stop()
    plain.process.wait(timeout=STOP_LIMIT)  # leaves when the scheduler stays away
    assert "trident worker stopped" in plain.out


def test_a_worker_with_a_wrong_token_fails_with_one_line(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = run("scheduler", "--port", "0", "--scheduler-file", str(scheduler_file))
    scheduler.wait_for_output("press Ctrl-C to stop")
    address, _ = read_scheduler_file(scheduler_file)
    for nanny in ("--nanny", "--no-nanny"):
        result = trident("worker", address, "--token", "wrong", nanny)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"trident worker: error: {address} refused the connection: invalid cluster token"
        ]
    info = trident("info", "--scheduler-file", str(scheduler_file), "--json")
    assert '"workers": {}' in info.stdout
    scheduler.stop()


def test_worker_settings_preload_and_pid_files_reach_the_processes(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    setup = tmp_path / "setup_server.py"
    setup.write_text("def dask_setup(server):\n    server.preloaded = type(server).__name__\n")
    pid_file = tmp_path / "scheduler.pid"
    scheduler = run(
        "scheduler", "--port", "0", "--token", "settings", "--scheduler-file",
        str(scheduler_file), "--preload", str(setup), "--pid-file", str(pid_file),
        "--dashboard-address", ":0", "--interface", loopback_interface(),
    )  # fmt: skip
    scheduler.wait_for_output("press Ctrl-C to stop")
    assert pid_file.read_text() == f"{scheduler.process.pid}\n"
    workers = []
    for name, nanny in [("nannied", "--nanny"), ("plain", "--no-nanny")]:
        args = [
            "worker", "--scheduler-file", str(scheduler_file), "--name", name, nanny,
            "--local-directory", str(tmp_path / name), "--heartbeat-interval", "250ms",
            "--preload", str(setup), "--interface", loopback_interface(),
        ]  # fmt: skip
        workers.append(run(*args))
    for worker in workers:
        worker.wait_for_output("joined")
    with Client(scheduler_file=str(scheduler_file)) as client:
        seen = client.run(worker_settings)
        assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.preloaded) == (
            "Scheduler"
        )
    assert sorted(seen.values()) == [
        (str(tmp_path / "nannied"), 0.25, "Worker"),
        (str(tmp_path / "plain"), 0.25, "Worker"),
    ]
    assert all(address.startswith("tcp://127.0.0.1:") for address in seen)
    for worker in workers:
        worker.stop()
    scheduler.stop()
    assert not pid_file.exists()


def test_up_passes_worker_settings_to_its_workers(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    setup = tmp_path / "setup_up.py"
    setup.write_text("def trident_setup(server):\n    server.preloaded = 'up'\n")
    pid_file = tmp_path / "up.pid"
    up = run(
        "up", "--workers", "1", "--threads", "2", "--scheduler-file", str(scheduler_file),
        "--no-dashboard", "--local-directory", str(tmp_path / "up"), "--heartbeat-interval",
        "0.5", "--preload", str(setup), "--pid-file", str(pid_file), "--protocol", "tcp",
    )  # fmt: skip
    up.wait_for_output("press Ctrl-C to stop")
    assert pid_file.read_text() == f"{up.process.pid}\n"
    with Client(scheduler_file=str(scheduler_file)) as client:
        assert list(client.run(worker_settings).values()) == [(str(tmp_path / "up"), 0.5, "up")]
        assert list(client.nthreads().values()) == [2]
    up.stop()
    assert not pid_file.exists()


def test_missing_tokens_and_closed_pipes(run, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = run("scheduler", "--port", "0", "--scheduler-file", str(scheduler_file))
    scheduler.wait_for_output("press Ctrl-C to stop")
    address, _ = read_scheduler_file(scheduler_file)
    # Without the token and without this user's recorded credentials (a runtime
    # directory of its own), as a client on another machine would be.
    env = {key: value for key, value in os.environ.items() if key != "TRIDENT_TOKEN"}
    env["TRIDENT_RUNTIME_DIR"] = str(tmp_path / "elsewhere")
    result = subprocess.run(
        [*TRIDENT, "info", address], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1
    assert "pass --token or set TRIDENT_TOKEN" in result.stderr
    # trident info | head: the reader has gone before anything is written
    reader = subprocess.Popen(
        [*TRIDENT, "info", "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None
    reader.stdout.close()
    _, stderr = reader.communicate(timeout=60)
    assert stderr == b""
    assert reader.returncode == 1
    scheduler.stop()


# --- the dashboard and logs of trident up ---------------------------------------------------


def test_up_serves_the_dashboard_and_verbose_shows_logs(run, tmp_path):
    import re
    import urllib.request

    scheduler_file = tmp_path / "scheduler.json"
    up = run(
        "up",
        "--workers",
        "1",
        "--dashboard-port",
        "0",
        "-v",
        "--scheduler-file",
        str(scheduler_file),
    )
    up.wait_for_output("press Ctrl-C to stop")
    match = re.search(r"dashboard\s+(http://\S+/status)", up.out)
    assert match, up.out
    _, security = read_scheduler_file(scheduler_file)
    assert security.token not in up.out
    base = match.group(1).rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
        assert response.status == 200
    request = urllib.request.Request(
        f"{base}/api/summary.json", headers={"Authorization": f"Bearer {security.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    with Client(scheduler_file=str(scheduler_file)) as client:
        assert client.dashboard_link.startswith(base)
        assert any("registered" in text for _, text in client.get_scheduler_logs())
    assert "INFO" in up.err  # -v shows trident's info records
    up.stop()


def test_up_without_a_dashboard(run, tmp_path):
    up = run(
        "up",
        "--workers",
        "1",
        "--no-dashboard",
        "--scheduler-file",
        str(tmp_path / "scheduler.json"),
    )
    up.wait_for_output("press Ctrl-C to stop")
    assert "  dashboard " not in up.out
    assert "INFO" not in up.err
    up.stop()
