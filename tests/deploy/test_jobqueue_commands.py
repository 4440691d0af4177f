"""The batch clusters drive their systems' commands: stand-in ``qsub``/``qdel``,
``bsub``/``bkill`` and ``sbatch``/``scancel`` on the PATH record how they were called
(arguments, standard input) and answer as the real ones do. Jobs never start here, so
this checks submission, job ids, cancellation, scaling by jobs and by workers, and what
the jobs are given to find the scheduler (a real SLURM runs them in test_slurm.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest
import trio

from trident import Adaptive, Client, LSFCluster, PBSCluster, SGECluster, SLURMCluster
from trident.deploy.jobqueue.cluster import JobSubmissionError
from trident.security import split_credential

ANSWERS = {
    "qsub-pbs": 'echo "$((1000 + n)).pbs01"',
    "qsub-sge": 'echo "Your job $((2000 + n)) (\\"x\\") has been submitted"',
    "bsub": 'echo "Job <$((3000 + n))> is submitted to queue <normal>."',
    "sbatch": 'echo "Submitted batch job $((4000 + n))"',
}


@pytest.fixture
def commands(tmp_path, monkeypatch):
    """Install stand-in batch commands; return a function that reads their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.jsonl"

    def install(name, answer="true"):
        script = bin_dir / name
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'exec 9>>"{log}.lock"; flock 9\n'  # the cluster submits jobs concurrently
            f'n=$(grep -c . "{log}" 2>/dev/null || true); n=${{n:-0}}\n'
            "stdin=$(cat)\n"
            f"python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \"$(basename $0)\" "
            f'"$@" "--stdin=$stdin" >> "{log}"\n'
            f"{answer}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    calls.install = install
    return calls


def options(tmp_path, **more):
    return dict(
        cores=4,
        memory="8GB",
        processes=2,
        host="127.0.0.1",
        dashboard_address=None,
        shared_directory=tmp_path / "shared",
        asynchronous=True,
        **more,
    )


def leaves(error):
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def argv(call):
    return [arg for arg in call if not arg.startswith("--stdin=")]


async def test_pbs_jobs_are_submitted_scaled_by_workers_and_cancelled(tmp_path, commands):
    commands.install("qsub", ANSWERS["qsub-pbs"])
    commands.install("qdel")
    async with PBSCluster(**options(tmp_path), queue="workq") as cluster:
        assert "#PBS -q workq" in cluster.job_script()
        await cluster.scale(3)  # 3 workers of 2 per job: 2 jobs
        jobs = cluster.jobs
        assert sorted(jobs) == ["trident-worker-0", "trident-worker-1"]
        assert sorted(jobs.values()) == ["1000.pbs01", "1001.pbs01"]  # submitted at once
        submitted = commands()
        assert [call[0] for call in submitted] == ["qsub", "qsub"]
        assert all(call[1].endswith(".sh") for call in submitted)
        await cluster.scale(jobs=1)
        ((kept, kept_id),) = cluster.jobs.items()
        (gone_id,) = set(jobs.values()) - {kept_id}
        assert jobs[kept] == kept_id
        assert argv(commands()[-1]) == ["qdel", gone_id]
    assert argv(commands()[-1]) == ["qdel", kept_id]  # closing cancels the rest


async def test_sge_job_ids_and_extra_command_arguments(tmp_path, commands):
    commands.install("qsub", ANSWERS["qsub-sge"])
    commands.install("qdel")
    async with SGECluster(
        **options(tmp_path),
        submit_command_extra=["-V"],
        cancel_command_extra=["-f"],
        resource_spec="h_vmem=4G",
    ) as cluster:
        await cluster.scale(jobs=2)
        assert sorted(cluster.jobs.values()) == ["2000", "2001"]
        assert commands()[0][:2] == ["qsub", "-V"]
        await cluster.scale(0)
    cancels = sorted(argv(call)[1:] for call in commands() if call[0] == "qdel")
    assert cancels == [["-f", "2000"], ["-f", "2001"]]


async def test_lsf_reads_the_script_from_standard_input(tmp_path, commands):
    commands.install("bsub", ANSWERS["bsub"])
    commands.install("bkill")
    async with LSFCluster(**options(tmp_path), walltime="02:00") as cluster:
        await cluster.scale(jobs=1)
        (submit,) = commands()
        assert argv(submit) == ["bsub"]
        stdin = submit[-1].removeprefix("--stdin=")
        assert "#BSUB -J trident-worker-0" in stdin
        assert "#BSUB -W 02:00" in stdin
        assert "--lifetime 6900 --lifetime-stagger 150" in stdin  # before 2 h is up
        assert cluster.jobs == {"trident-worker-0": "3000"}
    assert argv(commands()[-1]) == ["bkill", "3000"]


async def test_the_jobs_find_the_scheduler_in_a_private_file_not_in_argv(tmp_path, commands):
    commands.install("sbatch", ANSWERS["sbatch"])
    commands.install("scancel")
    async with SLURMCluster(**options(tmp_path), protocol="tls") as cluster:
        path = cluster.scheduler_file
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = json.loads(path.read_text())
        assert stored["address"] == cluster.scheduler_address
        assert stored["address"].startswith("tls://")
        token, pin = split_credential(stored["credential"])
        assert (token, pin) == (cluster.token, cluster.security.tls_fingerprint)
        # The certificate files stay here: the pin is all a job needs.
        assert {key for key, value in stored["tls"].items() if value} == {
            "require_client_cert",
            "tls_fingerprint",
        }
        await cluster.scale(jobs=1)
        (submit,) = commands()
        script = cluster.job_script()
        assert cluster.token not in script
        assert cluster.token not in " ".join(submit)
        assert f"--scheduler-file {path}" in script
    assert not path.exists()  # removed at close


async def test_a_failed_submission_raises_with_the_batch_systems_message(tmp_path, commands):
    commands.install(
        "sbatch", 'echo "sbatch: error: invalid partition specified: nope" >&2; exit 1'
    )
    commands.install("scancel")
    async with SLURMCluster(**options(tmp_path), queue="nope") as cluster:
        with pytest.raises((JobSubmissionError, ExceptionGroup)) as info:
            await cluster.scale(jobs=1)
        (error,) = leaves(info.value)  # however many task groups it crossed
        assert isinstance(error, JobSubmissionError)
        assert "invalid partition" in str(error)
        logs = await cluster.get_logs(scheduler=False, workers=False)
        assert "invalid partition" in logs["Cluster"]


def test_unknown_options_name_the_batch_system():
    with pytest.raises(TypeError, match=r"PBSCluster.*job_mem"):
        PBSCluster(cores=1, memory="1GB", job_mem="1G", asynchronous=True)


async def test_adapt_submits_and_cancels_jobs_through_scale_up_and_scale_down(tmp_path, commands):
    commands.install("sbatch", ANSWERS["sbatch"])
    commands.install("scancel")
    async with SLURMCluster(**options(tmp_path)) as cluster:
        await cluster.scale_up(5)  # what Adaptive asks: 5 workers, 2 per job
        assert sorted(cluster.jobs.values()) == ["4000", "4001", "4002"]
        await cluster.scale_up(2)  # fewer: nothing changes
        assert len(cluster.jobs) == 3
        assert cluster.threads_per_worker == 2
        with trio.fail_after(10):
            await cluster.scale_down([])  # no addresses: no job stops
        assert len(cluster.jobs) == 3


async def test_the_scheduler_serves_its_dashboard_here(tmp_path, commands):
    settings = {**options(tmp_path), "dashboard_address": "127.0.0.1:0"}
    async with SLURMCluster(**settings) as cluster:
        assert cluster.scheduler is not None
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        assert repr(cluster).startswith("SLURMCluster('tcp://127.0.0.1:")


async def test_a_cancel_command_that_cannot_run_is_logged_not_raised(tmp_path, commands):
    commands.install("bsub", ANSWERS["bsub"])  # and no bkill anywhere on the PATH
    async with LSFCluster(**options(tmp_path), cancel_command_extra=[]) as cluster:
        cluster.system = type(cluster.system)()
        cluster.system.cancel_command = ("no-such-bkill-command",)
        await cluster.scale(jobs=1)
        await cluster.scale(jobs=0)
        assert cluster.jobs == {}
        logs = await cluster.get_logs(scheduler=False, workers=False)
        assert "cancelling job 3000" in logs["Cluster"]


def registered(cluster):
    return {ws.name for ws in cluster.scheduler.state.workers.values()}


async def test_scaling_down_cancels_queued_jobs_before_retiring_a_running_worker(
    tmp_path, commands
):
    """The stand-in ``sbatch`` really runs the script of ``trident-worker-2`` (its worker
    joins the scheduler) and leaves the other jobs queued; ``scancel`` stops a job it
    ran. Scaling to one job cancels the two queued jobs at once and keeps the running
    worker, as dask's ``SpecCluster.scale`` drops not-yet-launched workers first."""
    jobs_dir = tmp_path / "running"
    jobs_dir.mkdir()
    commands.install(
        "sbatch",
        "id=$((4000 + n))\n"
        'case "$1" in *trident-worker-2.sh)\n'
        # fd 9 holds the stand-ins' lock: the job must not keep it
        f'  bash "$1" </dev/null >"{jobs_dir}/$id.out" 2>&1 9>&- &\n'
        f'  echo $! > "{jobs_dir}/$id.pid";;\n'
        "esac\n"
        'echo "Submitted batch job $id"',
    )
    commands.install(
        "scancel",
        f'for id in "$@"; do [ -f "{jobs_dir}/$id.pid" ] && kill "$(cat "{jobs_dir}/$id.pid")"; '
        "done; true",
    )
    settings = {**options(tmp_path), "processes": 1, "cores": 1, "nanny": False}
    async with SLURMCluster(**settings) as cluster:
        await cluster.scale(jobs=3)
        ids = cluster.jobs
        with trio.fail_after(60):
            while "trident-worker-2" not in registered(cluster):
                await trio.sleep(0.05)
        assert cluster.queued_jobs == ["trident-worker-0", "trident-worker-1"]
        await cluster.scale(jobs=1)
        assert cluster.jobs == {"trident-worker-2": ids["trident-worker-2"]}
        cancels = sorted(argv(call)[1:] for call in commands() if call[0] == "scancel")
        assert cancels == sorted([[ids["trident-worker-0"]], [ids["trident-worker-1"]]])
        assert registered(cluster) == {"trident-worker-2"}  # not retired, still computing
        # Below the running jobs, scaling down retires them (their data moved) as before.
        await cluster.scale(0)
        assert cluster.jobs == {}
        with trio.fail_after(30):
            while registered(cluster):
                await trio.sleep(0.05)
    assert argv(commands()[-1]) == ["scancel", ids["trident-worker-2"]]


class NeverGrows(Adaptive):
    """An `Adaptive=` class of a user's own (dask's spelling of the argument)."""

    def should_scale_up(self):
        return False


@pytest.mark.parametrize("policy", [None, NeverGrows])
async def test_adapt_cancels_queued_jobs_beyond_what_it_wants(tmp_path, commands, policy):
    """No job starts here. Without work, `adapt(minimum=2)` wants one job of two workers:
    the two newest queued jobs are cancelled after `wait_count` rounds, the oldest kept,
    and nothing is submitted in their place; with an `Adaptive=` class of one's own too."""
    commands.install("sbatch", ANSWERS["sbatch"])
    commands.install("scancel")
    async with SLURMCluster(**options(tmp_path)) as cluster:
        await cluster.scale(jobs=3)
        ids = cluster.jobs
        assert cluster.queued_jobs == list(ids)
        adaptive = cluster.adapt(
            minimum=2, maximum=10, interval=0.05, wait_count=3, Adaptive=policy
        )
        if policy is not None:
            assert isinstance(adaptive, policy)

        def cancels():
            return sorted(argv(call)[1:] for call in commands() if call[0] == "scancel")

        with trio.fail_after(10):
            while len(cancels()) < 2:
                await trio.sleep(0.02)
        assert list(cluster.jobs) == ["trident-worker-0"]
        assert cancels() == sorted([[ids["trident-worker-1"]], [ids["trident-worker-2"]]])
        ((_, _, names),) = [entry for entry in adaptive.log if entry[1] == "cancel"]
        assert sorted(names) == ["trident-worker-1", "trident-worker-2"]
        await trio.sleep(0.5)  # ten more rounds: the minimum's job stays, none is added
        assert list(cluster.jobs) == ["trident-worker-0"]
        assert [call[0] for call in commands()].count("sbatch") == 3
        assert len(cancels()) == 2


async def test_adapt_keeps_the_queued_jobs_that_waiting_work_needs(tmp_path, commands):
    """Eight tasks wait and no worker has come yet: `adapt` wants four workers (its
    maximum), two jobs of two: of three queued jobs it cancels the newest only, and keeps
    the two the work waits for however many rounds pass."""
    commands.install("sbatch", ANSWERS["sbatch"])
    commands.install("scancel")
    async with (
        SLURMCluster(**options(tmp_path)) as cluster,
        Client(cluster, asynchronous=True, set_as_default=False) as client,
    ):
        futures = client.map(str, range(8), pure=False)
        await cluster.scale(jobs=3)
        ids = cluster.jobs
        cluster.adapt(minimum=0, maximum=4, interval=0.05, wait_count=2, target_duration="100ms")
        await trio.sleep(0.8)
        assert list(cluster.jobs) == ["trident-worker-0", "trident-worker-1"]
        cancels = [argv(call)[1:] for call in commands() if call[0] == "scancel"]
        assert cancels == [[ids["trident-worker-2"]]]
        assert [call[0] for call in commands()].count("sbatch") == 3
        del futures
