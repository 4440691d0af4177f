"""joblib's 'trident' backend: scikit-learn's searches run their fits on the cluster and
find what joblib's own backend finds; ``import trident`` registers it without importing
joblib."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

import trident
from trident import Client, LocalCluster
from trident.joblib_backend import TridentBackend
from trident.worker.context import current_worker


class WhereFitted(LogisticRegression):
    """Remembers the address of the trident worker that fitted it (None elsewhere)."""

    def fit(self, X, y, sample_weight=None):
        worker = current_worker()
        self.fitted_on_ = worker.address if worker is not None else None
        return super().fit(X, y, sample_weight=sample_weight)


def fail(x):
    raise KeyError(f"no {x}")


@pytest.fixture
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        yield client


def search(n_jobs):
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    return GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3, n_jobs=n_jobs), X, y


def test_grid_search_runs_its_fits_on_the_cluster_with_the_same_results(client):
    # joblib's default backend, in this process (n_jobs=1: loky's worker processes
    # would outlive the test)
    expected, X, y = search(n_jobs=1)
    expected.fit(X, y)
    found, _, _ = search(n_jobs=-1)
    with joblib.parallel_backend("trident"):
        found.fit(X, y)
    assert found.best_params_ == expected.best_params_
    for column in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_allclose(found.cv_results_[column], expected.cv_results_[column])
    workers = set(client.nthreads())
    with joblib.parallel_backend("trident"):
        scores = cross_validate(WhereFitted(), X, y, cv=4, n_jobs=-1, return_estimator=True)
    assert {e.fitted_on_ for e in scores["estimator"]} <= workers  # every fit ran on a worker
    assert all(e.fitted_on_ is not None for e in scores["estimator"])


def test_parallel_calls_keep_order_errors_and_use_the_client_given(client):
    with joblib.parallel_backend("trident", client=client):
        assert joblib.Parallel()(joblib.delayed(pow)(i, 2) for i in range(50)) == [
            i**2 for i in range(50)
        ]
        with pytest.raises(KeyError, match="no 3"):
            joblib.Parallel()(joblib.delayed(fail)(i) for i in [3])
    with joblib.parallel_config(backend="trident"):
        assert joblib.effective_n_jobs(-1) == 2  # the cluster's threads
    squares = joblib.Parallel(backend="trident", n_jobs=-1)(
        joblib.delayed(pow)(i, 2) for i in range(5)
    )
    assert squares == [0, 1, 4, 9, 16]


def test_the_backend_needs_a_running_blocking_client():
    with pytest.raises(ValueError, match="trident client"), joblib.parallel_backend("trident"):
        joblib.Parallel()(joblib.delayed(pow)(i, 2) for i in range(2))
    not_started = Client("tcp://127.0.0.1:1", asynchronous=True)
    with pytest.raises(ValueError, match="blocking"):
        TridentBackend(client=not_started)


def test_import_trident_registers_the_backend_without_importing_joblib():
    program = textwrap.dedent(
        """
        import sys
        import trident
        assert "joblib" not in sys.modules, "import trident imported joblib"
        import importlib.util
        assert importlib.util.find_spec("joblib") is not None
        import joblib
        import joblib.parallel
        assert "trident" in joblib.parallel.BACKENDS
        assert type(joblib.__loader__).__module__.startswith("_frozen_importlib")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", program], check=True, env=env, timeout=60)
    assert trident.joblib_backend.BACKEND_NAME in joblib.parallel.BACKENDS


def sum_of_squares_on_the_cluster(n):
    with joblib.parallel_backend("trident"):
        return sum(joblib.Parallel(n_jobs=-1)(joblib.delayed(pow)(i, 2) for i in range(n)))


def test_tasks_that_run_parallel_calls_give_their_thread_up_while_waiting(client):
    # Two tasks fill both threads of the cluster; their batches still get to run.
    outer = client.map(sum_of_squares_on_the_cluster, [10, 20])
    assert [f.result(timeout=60) for f in outer] == [285, 2470]
