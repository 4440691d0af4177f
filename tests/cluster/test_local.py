"""LocalCluster: processes start, scale, and never outlive close, Ctrl-C or a dead parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import trio

from trident import Client, LocalCluster
from trident._local_credentials import RUNTIME_DIR_ENV
from trident.cluster.local import default_layout, parse_memory
from trident.comm.address import AddressError


def inc(x):
    return x + 1


def worker_pids(cluster):
    return sorted(h.process.pid for h in cluster.workers.values())


def environment_setting() -> str | None:
    return os.environ.get("TRIDENT_TEST_SETTING")


def test_processes_start_scale_and_stop():
    # env= reaches worker processes (dask's nanny env=), values as strings
    with LocalCluster(
        n_workers=2, threads_per_worker=1, env={"TRIDENT_TEST_SETTING": 5}
    ) as cluster:
        pids = worker_pids(cluster)
        assert len(pids) == 2
        assert all(psutil.pid_exists(p) for p in pids)
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        cluster.scale(3)
        assert len(cluster.workers) == 3
        with Client(cluster) as client:
            assert sum(client.nthreads().values()) == 3
            assert set(client.run(environment_setting).values()) == {"5"}
            cluster.scale(1)
            deadline = time.monotonic() + 10
            while len(client.nthreads()) != 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(client.nthreads()) == 1
            assert client.submit(inc, 1).result(timeout=10) == 2
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids
    )
    assert cluster.status == "closed"
    cluster.close()  # idempotent


def test_client_without_address_owns_its_cluster():
    with Client(n_workers=1, threads_per_worker=2) as client:
        assert client.cluster is not None
        assert client.submit(inc, 1).result() == 2
        assert list(client.nthreads().values()) == [2]
    assert client.cluster.status == "closed"


async def test_async_local_cluster_in_the_callers_trio_loop():
    with trio.fail_after(30):
        async with (
            LocalCluster(n_workers=1, processes=True, asynchronous=True) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            assert client.scheduler_address.startswith("inproc://")
            assert await client.submit(inc, 2) == 3
            await cluster.scale(2)
            assert len(cluster.workers) == 2


def run_script(body: str, *, wait_for: str, then=None, timeout=60):
    """Run a Python script that prints worker pids, optionally signal it, collect the pids."""
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(body)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    pids: list[int] = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("PIDS"):
            pids = [int(p) for p in line.split()[1:]]
        if wait_for in line:
            break
        assert time.monotonic() < deadline
    if then is not None:
        then(process)
    try:
        process.wait(timeout=30)
    finally:
        process.kill()
        process.communicate()
    return process, pids


def assert_all_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [
            p
            for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return
        time.sleep(0.05)
    for p in alive:
        os.kill(p, signal.SIGKILL)
    pytest.fail(f"orphaned worker processes {alive}")


PRELUDE = """
    import os, sys, time
    from trident import Client
    client = Client(n_workers=2, threads_per_worker=1)
    pids = sorted(h.process.pid for h in client.cluster.workers.values())
    print("PIDS", *pids, flush=True)
"""


def test_no_orphans_when_the_parent_crashes():
    _, pids = run_script("print('READY', flush=True)\nos._exit(1)\n", wait_for="READY")
    assert len(pids) == 2
    assert_all_gone(pids)


def test_no_orphans_after_ctrl_c():
    body = """
    print("READY", flush=True)
    try:
        client.submit(time.sleep, 60).result()
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        raise
    """
    process, pids = run_script(
        body, wait_for="READY", then=lambda p: (time.sleep(0.5), p.send_signal(signal.SIGINT))
    )
    assert process.returncode != 0
    assert_all_gone(pids)


def test_no_orphans_when_the_script_just_ends():
    process, pids = run_script("print('READY', flush=True)\n", wait_for="READY")
    assert process.returncode == 0
    assert_all_gone(pids)


def test_defaults_follow_dask():
    assert default_layout(2, True) == (2, 1)
    assert default_layout(16, True) == (4, 4)
    assert default_layout(12, True) == (4, 3)
    assert default_layout(8, False) == (1, 8)
    assert parse_memory("4GB") == 4 * 10**9
    assert parse_memory("512MiB") == 512 * 2**20
    assert parse_memory(1e9) == 10**9
    assert parse_memory(None) == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_workers must be"):
        LocalCluster(n_workers=-1)
    with pytest.raises(ValueError, match="inproc"):
        LocalCluster(processes=True, protocol="inproc")
    with pytest.raises(TypeError, match="env must map"):
        LocalCluster(n_workers=0, env=["TRIDENT_TEST_SETTING"])


def test_a_tls_cluster_encrypts_every_connection_and_refuses_plain_clients(tmp_path, monkeypatch):
    with LocalCluster(n_workers=2, threads_per_worker=1, security=True) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert cluster.security.tls
        assert cluster.token
        certificates = cluster.security.tls_ca_file
        assert os.path.exists(certificates)
        with Client(cluster) as client:
            assert all(address.startswith("tls://") for address in client.nthreads())
            data = client.scatter(list(range(10)), workers=[sorted(client.nthreads())[0]])
            moved = client.submit(sum, data, workers=[sorted(client.nthreads())[1]])
            assert moved.result(timeout=30) == 45  # worker to worker, over TLS
        # A client elsewhere (without the owner's runtime directory) and no TLS files.
        monkeypatch.setenv(RUNTIME_DIR_ENV, str(tmp_path))
        with pytest.raises(AddressError, match="tls:// addresses need TLS credentials"):
            Client(cluster.scheduler_address, security=cluster.token, timeout=5)
    assert not os.path.exists(certificates)  # the throwaway CA went with the cluster


def test_a_cluster_on_every_interface_serves_tls_by_default_and_tcp_when_asked():
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="0.0.0.0", dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        security = cluster.security
        assert security.tls_fingerprint
        assert not security.require_client_cert
        # What a remote client needs: the address and the credential, nothing more.
        with Client(cluster.scheduler_address, security=security.credential) as client:
            assert client.submit(inc, 1).result(timeout=30) == 2
            assert all(address.startswith("tls://") for address in client.nthreads())
    plain = LocalCluster(n_workers=0, host="0.0.0.0", protocol="tcp", dashboard_address=None)
    with plain:
        assert plain.scheduler_address.startswith("tcp://")
        assert not plain.security.tls


async def test_a_tls_cluster_with_in_process_workers_and_given_security(tls_security):
    with trio.fail_after(30):
        async with (
            LocalCluster(
                n_workers=1, processes=False, security=tls_security, asynchronous=True
            ) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            assert cluster.token == "tls-test-token"
            assert cluster.scheduler_address.startswith("tls://")
            assert await client.submit(inc, 2) == 3
    with pytest.raises(ValueError, match="tls protocol and TLS security go together"):
        LocalCluster(protocol="tls")
