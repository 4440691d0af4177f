"""Shared test configuration: every test must leave no process and no thread behind."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

from trident._local_credentials import RUNTIME_DIR_ENV

# Thread pools owned by the event-loop libraries themselves; they idle out on their own.
_LIBRARY_THREADS = ("Trio thread", "AnyIO worker thread", "asyncio_", "ThreadPoolExecutor-")

LEAK_GRACE_SECONDS = 5.0


def _own_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith(_LIBRARY_THREADS)
    ]


@pytest.fixture(autouse=True)
def no_leaked_processes_or_threads():
    """Fail a test that leaves child processes or trident threads running (and reap them)."""
    threads_before = set(threading.enumerate())
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    while True:
        threads = _own_threads(threads_before)
        children = [p for p in me.children(recursive=True) if p.pid not in children_before]
        children = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not threads and not children:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for child in children:
        child.kill()
    pytest.fail(
        f"leaked processes {[c.pid for c in children]} and threads {[t.name for t in threads]}"
    )


@pytest.fixture(scope="session", autouse=True)
def private_runtime_directory(tmp_path_factory):
    """Clusters started by tests record their credentials in a directory of this session
    (not the user's own runtime directory; see `trident._local_credentials`)."""
    directory = tmp_path_factory.mktemp("runtime")
    directory.chmod(0o700)
    saved = os.environ.get(RUNTIME_DIR_ENV)
    os.environ[RUNTIME_DIR_ENV] = str(directory)
    yield directory
    if saved is None:
        os.environ.pop(RUNTIME_DIR_ENV, None)
    else:
        os.environ[RUNTIME_DIR_ENV] = saved


@pytest.fixture(scope="session")
def tls_security(tmp_path_factory):
    """A throwaway CA and certificate (mutual TLS) shared by the tests of a session."""
    from trident import Security

    return Security.self_signed(tmp_path_factory.mktemp("tls"), token="tls-test-token")
