"""Structured concurrency from blocking code: task groups and Ctrl-C in scripts."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trident import LocalCluster

from .test_structured import fail, finished, sync_sleep

ROOT = Path(__file__).resolve().parents[2]


def test_blocking_task_group(trident_blocking_client):
    client = trident_blocking_client
    with client.task_group() as tg:
        ok = tg.submit(sync_sleep, 0.01, pure=False)
    assert ok.done()
    with pytest.raises(ExceptionGroup) as info, client.task_group() as tg:  # noqa: PT012
        slow = tg.submit(sync_sleep, 5, pure=False)
        tg.submit(fail, "blocking failure", pure=False)
    assert str(info.value.exceptions[0]) == "blocking failure"
    assert slow.cancelled()


def test_ctrl_c_in_a_script_cancels_its_remote_work():
    with LocalCluster(n_workers=1, processes=False, protocol="tcp") as cluster:
        script = textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            from trident import Client
            from tests.client.test_structured import sleeper
            client = Client({cluster.scheduler_address!r}, security={cluster.token!r})
            future = client.submit(sleeper, 60, "ctrl-c", pure=False)
            print("READY", flush=True)
            future.result()
            """
        )
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "READY"
            deadline = time.monotonic() + 10
            while not any(h.worker.state.executing for h in cluster.workers.values()):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            start = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
            assert time.monotonic() - start < 5  # exits promptly
            deadline = time.monotonic() + 10
            while "ctrl-c" not in finished:
                assert time.monotonic() < deadline, "the remote task was not cancelled"
                time.sleep(0.01)
        finally:
            process.kill()
            process.communicate()
