"""The job scripts and commands of the four batch systems, as text: the directives each
system gets for dask-jobqueue's knobs, the worker command lines (no secrets in them),
job ids read from what the submit commands print, and walltimes and lifetimes."""

from __future__ import annotations

import subprocess

import pytest

from trident.deploy.jobqueue.scripts import (
    LSF,
    PBS,
    SGE,
    SLURM,
    JobIdNotFound,
    JobSpec,
    default_lifetime,
    render_job_script,
    worker_command,
)


def spec(**options):
    settings = dict(
        name="tw-3",
        cores=8,
        memory=16 * 2**30,
        processes=2,
        walltime="01:00:00",
        queue="normal",
        account="proj42",
        log_directory="/shared/logs",
        python="/opt/venv/bin/python",
        scheduler_file="/home/u/.trident/jobqueue/tw.json",
        lifetime=3300,
        lifetime_stagger=150,
    )
    settings.update(options)
    return JobSpec(**settings)


def directives(system, text):
    return [line for line in text.splitlines() if line.startswith(system.prefix + " ")]


def test_slurm_directives():
    script = render_job_script(SLURM, spec(job_extra_directives=["--gres=gpu:1"]))
    assert script.startswith("#!/usr/bin/env bash\n")
    assert directives(SLURM, script) == [
        "#SBATCH -J tw-3",
        "#SBATCH -o /shared/logs/tw-3-%j.out",
        "#SBATCH -e /shared/logs/tw-3-%j.err",
        "#SBATCH -p normal",
        "#SBATCH -A proj42",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=16384M",
        "#SBATCH -t 01:00:00",
        "#SBATCH --gres=gpu:1",
    ]
    overridden = render_job_script(SLURM, spec(job_cpu=16, job_mem="20G", queue=None))
    assert "#SBATCH --cpus-per-task=16" in overridden
    assert "#SBATCH --mem=20G" in overridden
    assert "#SBATCH -p" not in overridden


def test_pbs_directives():
    script = render_job_script(PBS, spec())
    assert directives(PBS, script) == [
        "#PBS -N tw-3",
        "#PBS -o /shared/logs/",
        "#PBS -e /shared/logs/",
        "#PBS -q normal",
        "#PBS -A proj42",
        "#PBS -l select=1:ncpus=8:mem=16384MB",
        "#PBS -l walltime=01:00:00",
    ]
    custom = render_job_script(PBS, spec(resource_spec="nodes=1:ppn=8"))
    assert "#PBS -l nodes=1:ppn=8" in custom


def test_sge_directives():
    script = render_job_script(SGE, spec(resource_spec="m_mem_free=8G"))
    assert directives(SGE, script) == [
        "#$ -N tw-3",
        "#$ -q normal",
        "#$ -P proj42",
        "#$ -l m_mem_free=8G",
        "#$ -l h_rt=01:00:00",
        "#$ -cwd",
        "#$ -j y",
        "#$ -o /shared/logs/",
        "#$ -e /shared/logs/",
    ]


def test_lsf_directives_and_units():
    script = render_job_script(LSF, spec(walltime="01:00", lsf_units="mb"))
    assert directives(LSF, script) == [
        "#BSUB -J tw-3",
        "#BSUB -o /shared/logs/tw-3-%J.out",
        "#BSUB -e /shared/logs/tw-3-%J.err",
        "#BSUB -q normal",
        "#BSUB -P proj42",
        "#BSUB -n 8",
        '#BSUB -R "span[hosts=1]"',
        "#BSUB -M 16384",
        '#BSUB -R "rusage[mem=16384]"',
        "#BSUB -W 01:00",
    ]
    assert "#BSUB -M 16777216" in render_job_script(LSF, spec(walltime="01:00"))  # kb


def test_skip_extra_and_prologue_in_dask_jobqueues_order():
    script = render_job_script(
        SLURM,
        spec(
            job_extra_directives=["--exclusive", "--constraint=skylake"],
            job_directives_skip=["--mem", "skylake"],
            job_script_prologue=["module load python", "source /opt/venv/bin/activate"],
        ),
    )
    assert not [line for line in directives(SLURM, script) if "--mem" in line]
    assert "skylake" not in script
    lines = script.splitlines()
    assert lines.index("#SBATCH --exclusive") < lines.index("module load python")
    assert lines.index("source /opt/venv/bin/activate") < lines.index("pids=()")


def test_one_worker_per_job_is_execd_with_its_share():
    script = render_job_script(SLURM, spec(processes=1, worker_extra_args=["--resources", "GPU=1"]))
    (command,) = [line for line in script.splitlines() if line.startswith("exec ")]
    assert command == (
        "exec /opt/venv/bin/python -m trident worker --scheduler-file "
        "/home/u/.trident/jobqueue/tw.json --name tw-3 --nthreads 8 --memory-limit "
        f"{16 * 2**30} --lifetime 3300 --lifetime-stagger 150 --resources GPU=1"
    )


def test_several_workers_share_the_job_and_get_numbered_names():
    job = spec(processes=4, interface="ib0", local_directory="/scratch/u", nanny=False)
    assert job.worker_names == ["tw-3-0", "tw-3-1", "tw-3-2", "tw-3-3"]
    script = render_job_script(SGE, job)
    assert "for i in $(seq 0 3); do" in script
    assert '--name tw-3-"$i" --nthreads 2 --memory-limit 4294967296' in script
    assert "--interface ib0 --local-directory /scratch/u --no-nanny &" in script
    assert "trap 'kill -TERM \"${pids[@]}\" 2>/dev/null; wait' TERM INT" in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_no_secret_reaches_the_script():
    script = render_job_script(PBS, spec())
    assert "token" not in script.lower()
    assert "TRIDENT_TOKEN" not in script
    assert "--scheduler-file /home/u/.trident/jobqueue/tw.json" in script
    assert worker_command(spec(memory=0), "w")[-6:-4] == ["--memory-limit", "none"]


def test_submit_and_cancel_commands():
    assert SLURM.submit_args("/tmp/j.sh") == ["sbatch", "/tmp/j.sh"]
    assert PBS.submit_args("/tmp/j.sh") == ["qsub", "/tmp/j.sh"]
    assert SGE.submit_args("/tmp/j.sh") == ["qsub", "/tmp/j.sh"]
    assert LSF.submit_args("/tmp/j.sh") == ["bsub"]  # the script goes to its stdin
    assert LSF.submit_via_stdin
    assert not SLURM.submit_via_stdin
    assert SLURM.cancel_args(["12", "13"]) == ["scancel", "12", "13"]
    assert PBS.cancel_args(["7.pbs01"]) == ["qdel", "7.pbs01"]
    assert SGE.cancel_args(["8"]) == ["qdel", "8"]
    assert LSF.cancel_args(["9"]) == ["bkill", "9"]


@pytest.mark.parametrize(
    ("system", "output", "job_id"),
    [
        (SLURM, "Submitted batch job 4242\n", "4242"),
        (SLURM, "sbatch: Submitted batch job 17 on cluster c1\n", "17"),
        (PBS, "1234.pbs-server.example.org\n", "1234.pbs-server.example.org"),
        (PBS, "77\n", "77"),
        (SGE, 'Your job 5150 ("tw-3") has been submitted\n', "5150"),
        (LSF, "Job <9001> is submitted to queue <normal>.\n", "9001"),
    ],
)
def test_job_ids_are_read_from_the_submit_output(system, output, job_id):
    assert system.parse_job_id(output) == job_id


def test_an_output_without_a_job_id_is_an_error():
    with pytest.raises(JobIdNotFound, match="sbatch"):
        SLURM.parse_job_id("sbatch: error: invalid partition specified: nope\n")
    with pytest.raises(JobIdNotFound):
        LSF.parse_job_id("Request aborted by esub.\n")


def test_walltimes():
    assert SLURM.walltime_seconds("30") == 1800  # SLURM: minutes
    assert SLURM.walltime_seconds("10:30") == 630  # SLURM: MM:SS
    assert SLURM.walltime_seconds("01:00:00") == 3600
    assert SLURM.walltime_seconds("2-00") == 2 * 86400
    assert SLURM.walltime_seconds("1-02:03:04") == 86400 + 7384
    assert PBS.walltime_seconds("12:00:00") == 43200
    assert LSF.walltime_seconds("01:30") == 5400  # LSF: HH:MM
    with pytest.raises(ValueError, match="cannot read the walltime"):
        PBS.walltime_seconds("1:2:3:4")


def test_default_lifetime_leaves_before_the_walltime():
    lifetime, stagger = default_lifetime(3600)
    assert (lifetime, stagger) == (3300, 150)  # a 5-minute margin for an hour
    lifetime, stagger = default_lifetime(600)
    assert (lifetime, stagger) == (540, 30)
    assert lifetime + stagger < 600


def test_a_job_cannot_run_more_processes_than_cores():
    with pytest.raises(ValueError, match="processes"):
        spec(cores=2, processes=4)
