"""`SSHCluster` against real sshd servers, one per "host" (a network namespace).

Three hosts run OpenSSH's sshd with a host key made for the test and accept one client
key made for it (nothing else: no passwords); a fourth host runs the client side: a
script that builds `SSHCluster([scheduler, w1, w2])` with that key and the hosts' keys
as known hosts, computes with a `Client` on it, scales, and in the second test takes a
worker host off the network in the middle of a computation, whose result must still
be exact. Needs root, iproute2 and openssh-server (``.ci/run`` installs it); where they
are missing the tests are skipped and say why, except under CI (see `tests.deploy.netns`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import trident
from tests.deploy.netns import Network, open_network, unavailable

SUBNET = "10.213.9"
HOSTS = {"sched": 1, "w1": 2, "w2": 3, "client": 4}
SSH_HOSTS = ("sched", "w1", "w2")
SSHD = "/usr/sbin/sshd"
READY_TIMEOUT = 30.0

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {directory}/host_key
AuthorizedKeysFile {directory}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile {directory}/sshd-{host}.pid
"""

# Runs on the client host: argv = the test's JSON settings.
PRELUDE = textwrap.dedent(
    """
    import json, subprocess, sys, time
    from trident import Client, SSHCluster, wait

    settings = json.loads(sys.argv[1])
    report = {}

    def cluster(**scheduler_options):
        return SSHCluster(
            settings["hosts"],
            connect_options={
                "client_keys": [settings["key"]],
                "known_hosts": settings["known_hosts"],
            },
            worker_options={"nthreads": 2},
            scheduler_options={"dashboard_address": ":8787", **scheduler_options},
            remote_python=settings["python"],
        )

    def until(predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(0.1)

    def inc(x):
        return x + 1
    """
)

COMPUTE_SCRIPT = PRELUDE + textwrap.dedent(
    """
    with cluster() as c, Client(c) as client:
        report["repr"] = repr(c)
        report["address"] = c.scheduler_address
        report["dashboard"] = c.dashboard_link
        report["workers"] = sorted(
            w["name"] for w in client.scheduler_info()["workers"].values()
        )
        futures = client.map(inc, range(200))
        report["total"] = client.submit(sum, futures).result()
        report["hosts_used"] = sorted({a.split("://")[1].split(":")[0]
                                      for a in client.has_what() if client.has_what()[a]})
        c.scale(1)  # the worker leaving is retired first: its results move
        report["after_scale_down"] = len(c.workers)
        report["total_after_scale_down"] = client.submit(sum, futures).result()
        c.scale(2)
        client.wait_for_workers(2, timeout=60)
        report["after_scale_up"] = len(c.workers)
        report["logs"] = sorted(c.get_logs())
    report["status"] = c.status
    print(json.dumps(report))
    """
)

DROP_SCRIPT = PRELUDE + textwrap.dedent(
    """
    def slow_inc(x):
        time.sleep(0.05)
        return x + 1

    # A silent worker is given up after 3 s instead of 60 s, to keep the test short.
    with cluster(worker_timeout=3) as c, Client(c) as client:
        dropped = settings["drop_address"]
        xs = client.map(slow_inc, range(400))
        until(lambda: sum(f.status == "finished" for f in xs) > 100, "first results")
        on_dropped = [a for a, keys in client.has_what().items() if dropped in a and keys]
        report["held_on_dropped_host"] = bool(on_dropped)
        subprocess.run(settings["drop_command"], check=True)
        # The lost results are recomputed on the host that stays.
        report["total"] = client.submit(sum, xs).result()
        until(lambda: len(c.workers) == 1, "the cluster noticing the lost host")
        report["cluster_workers"] = len(c.workers)
        report["scheduler_workers"] = len(client.scheduler_info()["workers"])
        # At a fixed scale the lost worker is not replaced (dask's SSHCluster neither)...
        time.sleep(2)
        report["workers_later"] = len(c.workers)
        # ... until the next scale, which starts one on the worker hosts in turn.
        c.scale(2)
        client.wait_for_workers(2, timeout=60)
        workers = client.scheduler_info()["workers"].values()
        report["names_after_rescale"] = sorted(w["name"] for w in workers)
        report["total_after_rescale"] = client.submit(sum, client.map(inc, range(10))).result()
    print(json.dumps(report))
    """
)


class SSHHosts:
    """sshd on each of `SSH_HOSTS`, the keys to reach them, the client host's side."""

    def __init__(self, network: Network, directory: Path):
        self.network = network
        self.directory = directory
        self.sshd: list[subprocess.Popen[bytes]] = []

    def keygen(self, name: str) -> Path:
        path = self.directory / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return path

    def start(self) -> None:
        client_key = self.keygen("client_key")
        host_key = self.keygen("host_key")
        (self.directory / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
        public = Path(f"{host_key}.pub").read_text().split()
        (self.directory / "known_hosts").write_text(
            "".join(f"{self.network.address(h)} {public[0]} {public[1]}\n" for h in SSH_HOSTS)
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        for host in SSH_HOSTS:
            config = self.directory / f"sshd-{host}.conf"
            config.write_text(
                SSHD_CONFIG.format(
                    address=self.network.address(host), directory=self.directory, host=host
                )
            )
            log = open(self.directory / f"sshd-{host}.log", "wb")  # noqa: SIM115
            self.sshd.append(
                subprocess.Popen(
                    self.network.command(host, SSHD, "-D", "-e", "-f", str(config)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        for host in SSH_HOSTS:
            log_path = self.directory / f"sshd-{host}.log"
            while "Server listening" not in log_path.read_text():
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.sshd):
                    pytest.fail(f"sshd on {host} did not start:\n{log_path.read_text()}")
                time.sleep(0.05)

    def remote_processes(self) -> dict[str, list[int]]:
        """Processes the cluster left on the ssh hosts (anything but sshd)."""
        sshd = {p.pid for p in self.sshd}
        left = {}
        for host in SSH_HOSTS:
            pids = [p for p in self.network.pids(host) if p not in sshd and _alive(p)]
            pids = [p for p in pids if "sshd" not in _cmdline(p)]
            if pids:
                left[host] = pids
        return left

    def stop(self) -> None:
        for process in self.sshd:
            if process.poll() is None:
                process.terminate()
        for process in self.sshd:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pids in self.remote_processes().values():  # a failed test's leftovers
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def settings(self, **extra: object) -> dict[str, object]:
        root = Path(trident.__file__).resolve().parent.parent
        return {
            "hosts": [self.network.address(h) for h in SSH_HOSTS],
            "key": str(self.directory / "client_key"),
            "known_hosts": str(self.directory / "known_hosts"),
            "python": f"env PYTHONPATH={shlex.quote(str(root))} {shlex.quote(sys.executable)}",
            **extra,
        }

    def run_client(self, script: str, settings: dict[str, object]) -> dict[str, object]:
        path = self.directory / "client.py"
        path.write_text(script)
        result = subprocess.run(
            self.network.command("client", sys.executable, str(path), json.dumps(settings)),
            capture_output=True,
            text=True,
            timeout=240,
        )
        if result.returncode != 0:
            logs = "".join(p.read_text() for p in self.directory.glob("sshd-*.log"))
            pytest.fail(f"client script failed:\n{result.stderr}\nsshd logs:\n{logs}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture
def ssh_hosts(tmp_path):
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        unavailable("needs OpenSSH's sshd and ssh (apt-get install openssh-server)")
    with open_network("trssh", SUBNET, HOSTS) as network:
        hosts = SSHHosts(network, tmp_path)
        try:
            hosts.start()
            yield hosts
        finally:
            hosts.stop()


def test_a_client_computes_on_a_cluster_started_over_ssh(ssh_hosts):
    report = ssh_hosts.run_client(COMPUTE_SCRIPT, ssh_hosts.settings())
    scheduler = ssh_hosts.network.address("sched")
    assert report["address"].startswith(f"tls://{scheduler}:")  # TLS by default
    assert report["dashboard"].startswith(f"http://{scheduler}:")
    assert "token=" in report["dashboard"]
    assert report["repr"].startswith(f"SSHCluster('tls://{scheduler}:")
    assert report["workers"] == ["0", "1"]
    assert report["total"] == sum(range(1, 201))
    assert report["hosts_used"] == [ssh_hosts.network.address(h) for h in ("w1", "w2")]
    assert report["after_scale_down"] == 1
    assert report["total_after_scale_down"] == sum(range(1, 201))
    assert report["after_scale_up"] == 2
    assert "Cluster" in report["logs"]
    assert "Scheduler" in report["logs"]
    assert report["status"] == "closed"
    # Closing the cluster stopped every remote process it started.
    deadline = time.monotonic() + 20
    while ssh_hosts.remote_processes():
        assert time.monotonic() < deadline, ssh_hosts.remote_processes()
        time.sleep(0.2)


def test_a_host_that_drops_mid_run_loses_no_result(ssh_hosts):
    network = ssh_hosts.network
    drop = ["ip", "-n", network.switch, "link", "set", network.port("w2"), "down"]
    report = ssh_hosts.run_client(
        DROP_SCRIPT,
        ssh_hosts.settings(drop_address=network.address("w2"), drop_command=drop),
    )
    assert report["held_on_dropped_host"]
    assert report["total"] == sum(range(1, 401))  # exact: the lost results were recomputed
    assert report["cluster_workers"] == 1
    assert report["scheduler_workers"] == 1
    assert report["workers_later"] == 1
    assert report["names_after_rescale"] == ["0", "2"]  # "2" on w1: name 2 -> w1 in turn
    assert report["total_after_rescale"] == sum(range(1, 11))


CLI_CLIENT = textwrap.dedent(
    """
    import json, sys
    from trident import Client

    def inc(x):
        return x + 1

    with Client(scheduler_file=sys.argv[1], timeout=30) as client:
        client.wait_for_workers(3, timeout=60)
        total = client.submit(sum, client.map(inc, range(100))).result()
        names = sorted(w["name"] for w in client.scheduler_info()["workers"].values())
        print(json.dumps({"total": total, "names": names}))
    """
)


def test_trident_up_ssh_runs_a_cluster_until_sigterm(ssh_hosts):
    network, directory = ssh_hosts.network, ssh_hosts.directory
    settings = ssh_hosts.settings()
    scheduler_file = directory / "scheduler.json"
    command = [
        sys.executable, "-m", "trident", "up", "--ssh", ",".join(settings["hosts"]),
        "--workers", "3", "--ssh-key", settings["key"],
        "--ssh-option", f"UserKnownHostsFile={settings['known_hosts']}",
        "--remote-python", settings["python"], "--scheduler-file", str(scheduler_file),
    ]  # fmt: skip
    log_path = directory / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            network.command("client", *command), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "press Ctrl-C" not in log_path.read_text():
            assert up.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        banner = log_path.read_text()
        assert f"scheduler on {network.address('sched')}" in banner
        assert json.loads(scheduler_file.read_text())["credential"] not in banner
        (directory / "cli_client.py").write_text(CLI_CLIENT)
        result = subprocess.run(
            network.command(
                "client", sys.executable, str(directory / "cli_client.py"), str(scheduler_file)
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr + log_path.read_text()
        report = json.loads(result.stdout)
        assert report == {"total": sum(range(1, 101)), "names": ["0", "1", "2"]}
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    assert "trident up stopped" in log_path.read_text()
    assert not scheduler_file.exists()
    deadline = time.monotonic() + 20
    while ssh_hosts.remote_processes():
        assert time.monotonic() < deadline, ssh_hosts.remote_processes()
        time.sleep(0.2)


def test_a_host_ssh_cannot_reach_fails_the_start_with_ssh_s_own_words():
    if shutil.which("ssh") is None:
        unavailable("needs OpenSSH's ssh client")
    with pytest.raises(RuntimeError, match=r"scheduler on 127\.0\.0\.1 exited:\n.*refused"):
        trident.SSHCluster(
            ["127.0.0.1", "127.0.0.1"],
            connect_options={"port": 1, "known_hosts": None},  # nothing listens on port 1
        )


def test_connect_options_become_ssh_options_and_unknown_ones_are_refused():
    from trident.cluster.ssh import ssh_command

    command = ssh_command(
        "node1",
        "python3 -m trident.cluster.ssh_remote",
        {"port": 2222, "username": "me", "client_keys": "~/.ssh/k", "options": {"ProxyJump": "b"}},
    )
    assert command[-2:] == ["node1", "python3 -m trident.cluster.ssh_remote"]
    assert "BatchMode=yes" in command
    assert "ProxyJump=b" in command
    assert command[command.index("-p") + 1] == "2222"
    assert command[command.index("-l") + 1] == "me"
    assert command[command.index("-i") + 1] == "~/.ssh/k"
    with pytest.raises(TypeError, match="password"):
        trident.SSHCluster(["a", "b"], connect_options={"password": "no"})


CHAOS_SCRIPT = PRELUDE + textwrap.dedent(
    """
    from benchmarks.chaos import Graph

    graph = Graph(leaves=256, partitions=16)
    with cluster(allowed_failures=10) as c, Client(c) as client:
        print("computing", flush=True)
        started = time.monotonic()
        value = graph.submit(client).result(timeout=180)
        report["seconds"] = time.monotonic() - started
        report["tasks"] = len(graph)
        report["correct"] = value == graph.expected()
    print(json.dumps(report))
    """
)


#: Seconds between two kills: a restarted worker gets time to come back (this is the
#: default of ``nox -s chaos``).
KILL_INTERVAL = 3.0


def test_the_chaos_graph_is_exact_while_remote_worker_processes_are_killed(ssh_hosts):
    """The chaos proof (`benchmarks/chaos.py`) through SSHCluster: worker processes on
    the ssh hosts are killed with SIGKILL while the graph computes; their nannies
    restart them and the scheduler recomputes what they held."""
    network, directory = ssh_hosts.network, ssh_hosts.directory
    (directory / "chaos.py").write_text(CHAOS_SCRIPT)
    client = subprocess.Popen(
        network.command(
            "client", sys.executable, str(directory / "chaos.py"), json.dumps(ssh_hosts.settings())
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kills = 0
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "computing", client.stderr.read()
        pause = 0.5  # the first kill soon, then one every KILL_INTERVAL seconds
        while client.poll() is None:
            time.sleep(pause)
            pause = KILL_INTERVAL
            victims = [
                pid
                for host in ("w1", "w2")
                for pid in network.pids(host)
                if "trident.deploy.worker_process" in _cmdline(pid)
            ]
            if victims and client.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victims[kills % len(victims)], signal.SIGKILL)
                    kills += 1
        out, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["correct"], report
    assert kills >= 1
