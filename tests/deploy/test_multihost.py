"""A cluster across separate hosts: Linux network namespaces joined by a bridge.

The test makes four "hosts" (scheduler, two workers, a client), each a network namespace
with its own address on one subnet, wired to a bridge in a fifth namespace by veth pairs.
Processes are started with ``ip netns exec`` and find each other through a scheduler
file on the shared filesystem, as on machines sharing an NFS home. The client runs a
graph whose inputs live on different workers, so data must move between workers.
Everything is removed afterwards, also on failure. Needs root and iproute2; where
namespaces cannot be created the test is skipped and says why (fails under CI; see
`tests.deploy.netns`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from .netns import open_network

SUBNET = "10.213.7"
HOSTS = {"scheduler": 1, "w1": 2, "w2": 3, "client": 4}
WORKER_PORT = 9000
READY_TIMEOUT = 30.0

CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from trident import Client

    def make(n, base):
        return [base + i for i in range(n)]

    def combine(xs, ys):
        return sum(xs) + sum(ys)

    with Client(scheduler_file=sys.argv[1], timeout=20) as client:
        client.wait_for_workers(2, timeout=20)
        a = client.submit(make, 100_000, 0, workers=["w1"])
        b = client.submit(make, 100_000, 1, workers=["w2"])
        on_w1 = client.submit(combine, a, b, workers=["w1"])  # fetches b from w2
        on_w2 = client.submit(combine, a, b, workers=["w2"])  # fetches a from w1
        results = client.gather([on_w1, on_w2])
        who_has = client.who_has([a, b])
        info = client.scheduler_info()
        print(json.dumps({
            "results": results,
            "expected": 2 * sum(range(100_000)) + 100_000,
            "a_len": len(a.result()),
            "who_has": {"a": who_has[a.key], "b": who_has[b.key]},
            "workers": {w["name"]: address for address, w in info["workers"].items()},
        }))
    """
)


@pytest.fixture
def network():
    with open_network("trident", SUBNET, HOSTS) as net:
        yield net


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(predicate, what: str, processes) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not predicate():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"{' '.join(process.args[4:])} exited with {process.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# The scheme the cluster uses, and the scheduler's flags for it: a scheduler on a
# non-loopback host serves TLS by default; plain TCP must be asked for.
SECURITY_MODES = {
    "tcp": ("tcp", ["--no-tls"]),
    "tls-self-signed": ("tls", ["--tls-self-signed"]),
    "tls-by-default": ("tls", []),
}


@pytest.mark.parametrize("mode", SECURITY_MODES)
def test_workers_on_separate_hosts_exchange_data(network, processes, tmp_path, mode):
    scheme, flags = SECURITY_MODES[mode]
    trident = [sys.executable, "-m", "trident"]
    scheduler_file = tmp_path / "scheduler.json"
    logs = {}

    def start(host: str, *args: str) -> None:
        logs[host] = tmp_path / f"{host}.log"
        with open(logs[host], "w") as log:
            processes.append(
                subprocess.Popen(
                    network.command(host, *trident, *args),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    start(
        "scheduler", "scheduler", "--host", network.address("scheduler"), "--port", "8786",
        "--scheduler-file", str(scheduler_file), *flags,
    )  # fmt: skip
    wait_until(scheduler_file.exists, "the scheduler file", processes)
    start(
        "w1", "worker", "--scheduler-file", str(scheduler_file), "--name", "w1", "--nthreads", "1"
    )
    contact = f"{scheme}://{network.address('w2')}:{WORKER_PORT}"
    start(
        "w2", "worker", "--scheduler-file", str(scheduler_file), "--name", "w2", "--nthreads", "1",
        "--listen-address", f"{scheme}://0.0.0.0:{WORKER_PORT}", "--contact-address", contact,
        "--no-nanny",
    )  # fmt: skip
    for host in ("w1", "w2"):
        wait_until(lambda h=host: "joined" in logs[h].read_text(), f"worker {host}", processes)

    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    result = subprocess.run(
        network.command("client", sys.executable, str(script), str(scheduler_file)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + "".join(p.read_text() for p in logs.values())
    report = json.loads(result.stdout)
    assert report["results"] == [report["expected"]] * 2
    assert report["a_len"] == 100_000  # fetched by the client straight from w1
    workers = report["workers"]
    assert workers["w1"].startswith(f"{scheme}://{network.address('w1')}:")
    assert workers["w2"] == contact
    assert report["who_has"]["a"][0] == workers["w1"]
    assert report["who_has"]["b"][0] == workers["w2"]
