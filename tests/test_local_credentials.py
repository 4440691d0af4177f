"""A cluster's owner connects by address alone; everyone else still needs the token."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import textwrap

import pytest

from trident import AuthenticationError, Client, LocalCluster
from trident import _local_credentials as local_credentials
from trident._scheduler_file import read_scheduler_file

OTHER_USER = "trident-test-other"

#: Connects to the address in argv[1] with no token, as the user argv[2] if given (the
#: interpreter lives under root's home, so it starts as root and drops to that user once
#: trident is imported); prints the outcome on one line.
CONNECT = textwrap.dedent(
    """
    import os, pwd, sys
    from trident import Client
    import encodings.idna, trident.client.reconnection, trident.comm.handshake  # imported now
    if len(sys.argv) > 2:
        user = pwd.getpwnam(sys.argv[2])
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        assert os.getuid() == user.pw_uid and os.geteuid() == user.pw_uid
    try:
        with Client(sys.argv[1], timeout=10, set_as_default=False) as client:
            print("connected", client.submit(sum, [20, 22]).result())
    except Exception as exc:
        print("refused", type(exc).__name__, exc)
    """
)


def _inc(x: int) -> int:
    return x + 1


def test_the_owner_connects_by_address_alone(private_runtime_directory, monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as c:
        port = c.scheduler_address.rpartition(":")[2]
        (record,) = private_runtime_directory.glob(f"scheduler-{port}-*.json")
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert stat.S_IMODE(private_runtime_directory.stat().st_mode) == 0o700
        assert read_scheduler_file(record)[1].token == c.token
        for address in (c.scheduler_address, f"tcp://localhost:{port}", f"127.0.0.1:{port}"):
            with Client(address, set_as_default=False) as client:
                assert client.submit(_inc, 1).result(timeout=10) == 2
                assert repr(client).startswith(f"<Client: scheduler='{address}'")
    assert not record.exists()
    assert local_credentials.lookup(f"tcp://127.0.0.1:{port}") is None


def test_a_cluster_of_processes_records_every_address(monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    cluster = LocalCluster(n_workers=1, dashboard_address=None)
    try:
        # The dask idiom.
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            assert client.submit(_inc, 41).result(timeout=30) == 42
    finally:
        cluster.close()


def test_records_of_dead_processes_and_other_hosts_do_not_match(private_runtime_directory):
    with LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as c:
        port = int(c.scheduler_address.rpartition(":")[2])
        assert local_credentials.lookup(f"tcp://192.0.2.7:{port}") is None  # another machine
        assert local_credentials.lookup(f"tcp://127.0.0.1:{port + 1}") is None
        assert local_credentials.lookup(f"tcp://127.0.0.1:{port}") is not None
        stale = private_runtime_directory / "scheduler-1-999999999.json"
        stale.write_text('{"address": "tcp://127.0.0.1:1", "pid": 999999999, "token": "x"}')
        assert local_credentials.lookup("tcp://127.0.0.1:1") is None
        local_credentials.record(["tcp://127.0.0.1:2"], c.security)  # cleans stale records
        assert not stale.exists()
        local_credentials.forget([], next(private_runtime_directory.glob("scheduler-2-*")))


def test_a_given_token_is_not_replaced(monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    with (
        LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as c,
        pytest.raises(AuthenticationError, match="invalid cluster token"),
        Client(c.scheduler_address, security="a-wrong-token", set_as_default=False),
    ):
        pass


def _ensure_other_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(OTHER_USER)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as a second user")
def test_another_user_on_this_machine_is_refused(private_runtime_directory, monkeypatch):
    monkeypatch.delenv("TRIDENT_TOKEN", raising=False)
    _ensure_other_user()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        # Even pointed at the owner's runtime directory, the other user cannot read it.
        local_credentials.RUNTIME_DIR_ENV: str(private_runtime_directory),
        "HOME": "/tmp",
    }
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as c:
        as_owner = subprocess.run(
            [sys.executable, "-c", CONNECT, c.scheduler_address],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert as_owner.stdout.strip() == "connected 42", as_owner.stderr
        as_other = subprocess.run(
            [sys.executable, "-c", CONNECT, c.scheduler_address, OTHER_USER],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert as_other.stdout.startswith("refused AuthenticationError"), (
        as_other.stdout + as_other.stderr
    )
    assert "requires a cluster token" in as_other.stdout
