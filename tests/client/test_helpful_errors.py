"""The common first mistakes end in one error that says what to do."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import traceback

import pytest
import trio

from trident import Client, LocalCluster, Scheduler
from trident.comm.transports import HostNotFound

TOKEN = "helpful-errors-token"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_blocking_client_inside_trio_run_says_to_use_asynchronous():
    async def with_blocking_client() -> None:
        with Client(n_workers=1, processes=False, dashboard_address=None):
            pass

    async def async_with_blocking_client() -> None:
        async with Client(n_workers=1, processes=False, dashboard_address=None):
            pass

    for main in (with_blocking_client, async_with_blocking_client):
        with pytest.raises(RuntimeError, match=r"inside trio\.run.*asynchronous=True"):
            trio.run(main)


def test_a_blocking_local_cluster_inside_trio_run_says_to_use_asynchronous():
    async def main() -> None:
        LocalCluster(n_workers=0, processes=False, dashboard_address=None)

    with pytest.raises(RuntimeError, match=r"inside trio\.run.*asynchronous=True"):
        trio.run(main)


def test_no_scheduler_waits_for_the_timeout_then_says_so_in_one_line():
    port = _free_port()
    began = time.monotonic()
    with pytest.raises(OSError) as info:  # noqa: PT011 (the message is checked below)
        Client(f"tcp://127.0.0.1:{port}", timeout=1.5, set_as_default=False)
    waited = time.monotonic() - began
    assert (
        str(info.value)
        == f"no scheduler at tcp://127.0.0.1:{port} after 1.5 s (connection refused)"
    )
    assert type(info.value) is OSError
    rendered = "".join(traceback.format_exception(info.value))
    assert "During handling" not in rendered
    assert "direct cause" not in rendered
    assert "ExceptionGroup" not in rendered
    assert 1.4 < waited < 10


def test_an_unknown_host_is_named_at_once():
    began = time.monotonic()
    with pytest.raises(HostNotFound, match=r"^cannot resolve 'no-such-host\.invalid'"):
        Client("tcp://no-such-host.invalid:8786", timeout=20, set_as_default=False)
    assert time.monotonic() - began < 15  # the resolver's own time; no retries
    assert issubclass(HostNotFound, OSError)


async def test_a_client_waits_for_a_scheduler_that_is_still_starting():
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:

            async def start_late() -> None:
                await trio.sleep(0.5)
                await nursery.start(Scheduler(address, token=TOKEN).serve)

            nursery.start_soon(start_late)
            async with Client(
                address, security=TOKEN, timeout=20, asynchronous=True, set_as_default=False
            ) as client:
                assert client.status == "running"
            nursery.cancel_scope.cancel()


async def test_a_tcp_client_of_a_tls_scheduler_is_told_at_once(tls_security):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            security = tls_security.with_token(TOKEN)
            scheduler = await nursery.start(Scheduler("tls://127.0.0.1:0", security=security).serve)
            port = scheduler.address.rpartition(":")[2]
            began = trio.current_time()
            with pytest.raises(ConnectionError, match="serves TLS") as info:
                async with Client(
                    f"tcp://127.0.0.1:{port}",
                    security=TOKEN,
                    asynchronous=True,
                    set_as_default=False,
                ):
                    pass
            took = trio.current_time() - began
            print(f"detected TLS in {took:.2f} s")
            # About 0.4 s on an idle machine (the handshake timeout is 10 s); generous here
            # for a loaded one.
            assert took < 3
            assert f"tls://127.0.0.1:{port}" in str(info.value)
            assert "docs/deploy.md" in str(info.value)
            nursery.cancel_scope.cancel()


def test_the_repr_shows_the_address_others_use():
    with (
        LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as c,
        Client(c, set_as_default=False) as client,
    ):
        assert client._core.address.startswith("inproc://")  # the fast path it uses itself
        assert repr(client).startswith(f"<Client: scheduler='{c.scheduler_address}'")
        assert c.scheduler_address.startswith("tcp://")


SCRIPT = textwrap.dedent(
    """
    from trident import Client


    def fails(x):
        y = x + 1
        raise ValueError(f"failed with {y}")


    if __name__ == "__main__":
        with Client(n_workers=1, processes={processes}, dashboard_address=None) as client:
            client.submit(fails, 1).result()
    """
)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_tracebacks_of_script_functions_show_the_script(tmp_path, processes):
    script = tmp_path / "my_script.py"
    script.write_text(SCRIPT.replace("{processes}", str(processes)))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert f'File "{script}", line 7, in fails' in result.stderr, result.stderr
    assert 'raise ValueError(f"failed with {y}")' in result.stderr
    assert "<dynamic-code>" not in result.stderr
    assert result.stderr.rstrip().splitlines()[-2] == "ValueError: failed with 2"
