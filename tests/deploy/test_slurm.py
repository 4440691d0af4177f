"""`SLURMCluster` against a real single-node SLURM (slurmctld + slurmd + munged from the
distribution's packages, started by this module; see `local_slurm`): jobs are
submitted with ``sbatch``, their workers join the scheduler in this process, a `Client`
computes, scaling down retires a worker (its data moved) and cancels its job with
``scancel``, closing cancels the rest; and a worker whose lifetime is over leaves by
itself, its job ending before the walltime. CI installs the packages and sets
``TRIDENT_REQUIRE_SLURM`` (.ci/run), so there this fails rather than skips.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest

from trident import Client, SLURMCluster

from .local_slurm import REQUIRED_ENV, LocalSlurm, missing

WAIT = 120.0  # jobs on a loaded two-core machine: be patient, but never hang


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing()
    if reason is not None:
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(f"{REQUIRED_ENV} is set but SLURM cannot run here: {reason}")
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("slurm")
    directory.chmod(0o700)
    local = LocalSlurm(directory)
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(local.conf)
    try:
        local.start()
        yield local
    finally:
        local.stop()
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


def eventually(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def workers_reading(path) -> list[psutil.Process]:
    """Processes started with this scheduler file (the cluster's workers)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(path) in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


def inc(x):
    return x + 1


def cluster_options(tmp_path, **more):
    return dict(
        cores=1,
        memory="1GB",
        processes=1,
        walltime="00:10:00",
        log_directory=tmp_path,
        shared_directory=tmp_path / "shared",
        dashboard_address=None,
        **more,
    )


def test_jobs_run_workers_a_client_computes_and_scaling_down_cancels_jobs(slurm, tmp_path):
    with SLURMCluster(**cluster_options(tmp_path)) as cluster:
        script = cluster.job_script()
        assert "#SBATCH --cpus-per-task=1" in script
        assert cluster.token not in script
        cluster.scale(jobs=2)
        jobs = cluster.jobs
        assert sorted(jobs) == ["trident-worker-0", "trident-worker-1"]
        assert sorted(slurm.jobs()) == sorted(jobs.values())
        with Client(cluster, timeout=30) as client:
            client.wait_for_workers(2, timeout=WAIT)
            names = sorted(info["name"] for info in client.scheduler_info()["workers"].values())
            assert names == ["trident-worker-0", "trident-worker-1"]
            data = client.map(inc, range(40))
            total = client.submit(sum, data)
            assert total.result(timeout=WAIT) == sum(range(1, 41))
            holders = {w for ws in client.who_has(data).values() for w in ws}
            assert len(holders) == 2  # the work was spread over both jobs

            cluster.scale(1)  # one worker per job: one job goes, its data moved first
            ((_, kept_id),) = cluster.jobs.items()
            eventually(lambda: slurm.jobs() == [kept_id], "the other job to be cancelled")
            assert len(client.nthreads()) == 1
            assert client.gather(data) == list(range(1, 41))  # nothing was lost
            assert total.result() == sum(range(1, 41))
        scheduler_file = cluster.scheduler_file
        assert workers_reading(scheduler_file)
    eventually(lambda: not slurm.jobs(), "every job to end after close")
    eventually(lambda: not workers_reading(scheduler_file), "the workers to exit")
    assert not scheduler_file.exists()
    assert slurm.job_state(kept_id) == "CANCELLED"


def test_a_worker_leaves_by_itself_before_the_walltime(slurm, tmp_path):
    options = cluster_options(tmp_path, lifetime="4s", lifetime_stagger=0)
    with SLURMCluster(**options) as cluster:
        assert "--lifetime 4 --lifetime-stagger 0" in cluster.job_script()
        cluster.scale(jobs=1)
        ((_, job_id),) = cluster.jobs.items()
        with Client(cluster, timeout=30) as client:
            client.wait_for_workers(1, timeout=WAIT)
            assert client.submit(inc, 1).result(timeout=WAIT) == 2
            # The worker asks to be retired, stops, and its job script ends with it.
            eventually(lambda: not slurm.jobs(), "the job to end by itself")
            assert client.nthreads() == {}
        assert slurm.job_state(job_id) == "COMPLETED"  # neither cancelled nor timed out
        eventually(lambda: not cluster.jobs, "the cluster to notice", timeout=30)
        # At a fixed scale the job is not replaced (as in dask-jobqueue): adapt does that.
        time.sleep(2)
        assert cluster.jobs == {}
        assert slurm.jobs() == []


def test_adapt_replaces_the_job_of_a_worker_that_left_at_its_lifetime(slurm, tmp_path):
    """What docs/how-to/batch.md recommends across walltimes: a worker lifetime and
    `adapt(minimum=...)`. The first job's worker leaves at its lifetime (the job ends
    COMPLETED); once the cluster noticed, `adapt` submits a job in its place, whose
    worker joins and computes."""
    options = cluster_options(tmp_path, lifetime="5s", lifetime_stagger=0)
    with SLURMCluster(**options) as cluster:
        cluster.adapt(minimum=1, maximum=1, interval="250ms")
        with Client(cluster, timeout=30) as client:
            client.wait_for_workers(1, timeout=WAIT)
            ((first, first_id),) = cluster.jobs.items()
            eventually(lambda: slurm.job_state(first_id) == "COMPLETED", "the job to end")
            eventually(lambda: set(cluster.jobs) - {first}, "adapt to submit another job")
            assert first not in cluster.jobs
            eventually(lambda: registered_names(client) - {first}, "its worker to join")
            assert client.submit(inc, 1).result(timeout=WAIT) == 2
    eventually(lambda: not slurm.jobs(), "every job to end after close")


def slow_inc(x):
    time.sleep(0.5)
    return x + 1


def test_adapt_submits_jobs_under_load_and_cancels_them_when_idle(slurm, tmp_path):
    with SLURMCluster(**cluster_options(tmp_path)) as cluster:
        adaptive = cluster.adapt(
            minimum=0, maximum=2, interval="250ms", wait_count=2, target_duration="1s"
        )
        assert slurm.jobs() == []
        with Client(cluster, timeout=30) as client:
            futures = client.map(slow_inc, range(12))
            assert eventually(slurm.jobs, "adapt to submit a job")
            assert [f.result(timeout=WAIT) for f in futures] == list(range(1, 13))
            del futures  # released: the workers go idle
            eventually(lambda: not slurm.jobs(), "adapt to cancel the idle jobs")
            eventually(lambda: not cluster.jobs, "the cluster to drop them", timeout=30)
        assert adaptive.scaled_up >= 1
        assert adaptive.retired >= 1


def registered_names(client) -> set[str]:
    return {info["name"] for info in client.scheduler_info()["workers"].values()}


def test_queued_jobs_are_cancelled_first_by_scale_and_by_adapt(slurm, tmp_path):
    """Jobs submitted held (``sbatch --hold``) stay PENDING until released. The newer job
    is released and its worker joins; scaling to one job cancels the older, still
    pending one at once (it never runs) and keeps the running worker. Then `adapt` with
    nothing to do cancels a pending job without waiting for it to start."""
    options = cluster_options(tmp_path, submit_command_extra=["--hold"])
    with SLURMCluster(**options) as cluster:
        cluster.scale(jobs=2)
        jobs = cluster.jobs
        older, newer = jobs["trident-worker-0"], jobs["trident-worker-1"]
        slurm.run("scontrol", "release", newer)
        with Client(cluster, timeout=30) as client:
            client.wait_for_workers(1, timeout=WAIT)
            assert registered_names(client) == {"trident-worker-1"}
            assert cluster.queued_jobs == ["trident-worker-0"]
            assert slurm.job_state(older) == "PENDING"

            cluster.scale(jobs=1)
            assert cluster.jobs == {"trident-worker-1": newer}
            assert slurm.job_state(older) == "CANCELLED"
            assert slurm.jobs() == [newer]
            assert registered_names(client) == {"trident-worker-1"}  # kept, not retired

            cluster.scale(jobs=2)  # one more, held: pending
            (added,) = set(cluster.jobs.values()) - {newer}
            assert slurm.job_state(added) == "PENDING"
            adaptive = cluster.adapt(minimum=1, maximum=2, interval="250ms", wait_count=2)
            eventually(lambda: slurm.job_state(added) == "CANCELLED", "adapt to cancel it")
            assert cluster.jobs == {"trident-worker-1": newer}
            assert [entry[1] for entry in adaptive.log] == ["cancel"]
            assert registered_names(client) == {"trident-worker-1"}
    eventually(lambda: not slurm.jobs(), "every job to end after close")
