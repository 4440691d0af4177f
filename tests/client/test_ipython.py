"""IPython kernels in worker processes and in the scheduler, the magics that use them,
and the ImportError that names the extra when ipykernel is missing."""

from __future__ import annotations

import sys

import pytest
import trio

from trident import Client, LocalCluster
from trident.testing import in_process_cluster

pytest.importorskip("ipykernel", reason="kernels need ipykernel (trident[ipython])")

from jupyter_client import BlockingKernelClient


def run_in_kernel(info, code):
    """What `code` prints in the kernel of `info` (read from the kernel's messages: a
    kernel in this process owns this process's stdout meanwhile)."""
    client = BlockingKernelClient()
    client.load_connection_info(info)
    client.start_channels(hb=False)
    try:
        client.wait_for_ready(timeout=30)
        msg_id = client.execute(code)
        printed = []
        while True:
            message = client.get_iopub_msg(timeout=30)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            elif (
                message["msg_type"] == "status" and message["content"]["execution_state"] == "idle"
            ):
                return "".join(printed)
    finally:
        client.stop_channels()


def test_kernels_in_worker_processes_and_the_scheduler():
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        (address,) = client.nthreads()
        info = client.start_ipython_workers()
        assert list(info) == [address]
        assert info[address]["key"]
        assert run_in_kernel(info[address], "print(worker.address)").strip() == address
        assert client.start_ipython_workers() == info  # one kernel per worker
        scheduler_info = client.start_ipython_scheduler()
        code = "print(len(scheduler.state.workers), scheduler.address)"
        out = run_in_kernel(scheduler_info, code)
        assert out.split() == ["1", cluster.scheduler.address]
    # The scheduler's kernel stopped with it: its threads are gone (the fixture checks)
    # and this process's stdout is its own again.
    assert "ipykernel" not in type(sys.stdout).__module__


def test_magics_run_code_in_worker_kernels(capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    settings = Config()
    settings.HistoryManager.enabled = False  # no history thread in the test process
    shell = InteractiveShell.instance(config=settings)
    try:
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            info = client.start_ipython_workers(magic_names="worker_*")
            assert len(info) == 2
            capsys.readouterr()
            shell.run_line_magic("worker_0", "print(worker.name)")
            shell.run_cell_magic("worker_1", "", "x = 6 * 7\nprint(x)")
            name, answer = capsys.readouterr().out.split()
            assert name in cluster.workers
            assert answer == "42"
            with pytest.raises(RuntimeError, match="already"):
                client.start_ipython_scheduler()  # this process runs an IPython shell
    finally:
        InteractiveShell.clear_instance()


async def test_without_ipykernel_an_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", None)
    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", None)
    with trio.fail_after(30):
        async with (
            in_process_cluster(n_workers=1, threads_per_worker=1) as cluster,
            Client(cluster, asynchronous=True, set_as_default=False) as client,
        ):
            with pytest.raises(ImportError, match=r"trident\[ipython\]"):
                await client.start_ipython_workers()
            with pytest.raises(ImportError, match=r"trident\[ipython\]"):
                await client.start_ipython_scheduler()
