"""Worker processes start with their native thread pools limited to their thread count."""

from __future__ import annotations

import os

import numpy as np

from trident import Client, LocalCluster
from trident.worker.native_threads import (
    LIMIT_ENV,
    THREAD_VARIABLES,
    limit_native_threads,
    worker_environment,
)


def environment() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "MALLOC_TRIM_THRESHOLD_")}


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # the BLAS library is loaded by now
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_worker_environment_sets_each_pool_and_keeps_what_the_user_set():
    env = worker_environment(3, {"OMP_NUM_THREADS": "7", "PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == "7"
    assert env["PATH"] == "/bin"
    for name in THREAD_VARIABLES[1:]:
        assert env[name] == "3"
    assert env["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_limiting_can_be_turned_off():
    assert limit_native_threads({})
    assert not limit_native_threads({LIMIT_ENV: "0"})
    env = worker_environment(2, {LIMIT_ENV: "off"})
    assert not any(name in env for name in THREAD_VARIABLES)
    assert env["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_a_worker_process_runs_blas_with_as_many_threads_as_the_worker(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        env = client.submit(environment).result(timeout=30)
        assert all(env[name] == "2" for name in THREAD_VARIABLES)
        assert env["MALLOC_TRIM_THRESHOLD_"] == "65536"
        pools = client.submit(blas_threads).result(timeout=30)
        assert pools
        assert all(threads == 2 for threads in pools)


def test_the_limit_can_be_turned_off_for_worker_processes(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(LIMIT_ENV, "0")
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        env = client.submit(environment).result(timeout=30)
        assert all(env[name] is None for name in THREAD_VARIABLES)
