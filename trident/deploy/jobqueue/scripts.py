"""Job scripts and commands of the four batch systems, as plain text (no I/O).

A `JobSpec` says what one job runs: `processes` ``trident worker`` processes sharing
its `cores` and `memory`, each reading the cluster's address and credential from a
scheduler file (``--scheduler-file``), never from its command line. A `BatchSystem`
(`SLURM`, `PBS`, `SGE`, `LSF`) turns a spec into the job script's directives, and knows
the commands that submit and cancel a job and how to find the job id in what the
submit command printed. `render_job_script` puts the script together, with
dask-jobqueue's knobs applied in dask-jobqueue's order: the system's own directives,
then `job_extra_directives`, minus every line containing a `job_directives_skip`
string, then `job_script_prologue`, then the workers.

Workers leave before the walltime ends: each gets ``--lifetime`` (the walltime less a
margin, see `default_lifetime`) and ``--lifetime-stagger``, so it asks the scheduler to
retire it (its data moved to the workers that stay) while the job still runs.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Sequence

import attrs

#: How a walltime is written when none is given (dask-jobqueue's default).
DEFAULT_WALLTIME = "00:30:00"
#: The most time a worker keeps between its lifetime and the walltime.
LIFETIME_MARGIN = 300.0


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(item) for item in value)


class JobIdNotFound(RuntimeError):
    """The submit command's output did not contain a job id."""


@attrs.frozen(kw_only=True)
class JobSpec:
    """What one batch job asks for and runs (dask-jobqueue's names).

    Attributes:
        name: the job's name in the batch system, and its worker's name on the
            scheduler (with ``-0``, ``-1``, ... when the job runs several workers).
        cores: cores of the whole job, shared by its `processes`.
        memory: bytes of the whole job, shared by its `processes`.
        processes: worker processes the job runs (each with ``cores // processes``
            threads and ``memory // processes`` bytes).
        walltime: the job's time limit in the batch system's notation, or None.
        queue: the queue (partition) to submit to, or None.
        account: the account (project) charged, or None.
        job_extra_directives: more directives, each written after the directive
            prefix (``--gres=gpu:1`` becomes ``#SBATCH --gres=gpu:1``).
        job_directives_skip: directive lines containing any of these are left out.
        job_script_prologue: shell lines run before the workers (``module load``,
            ``source venv/bin/activate``).
        worker_extra_args: more arguments for each ``trident worker``.
        interface: the network interface the workers listen on (``--interface``).
        local_directory: where workers keep their files (``--local-directory``).
        log_directory: where the batch system writes the job's output, or None for
            its default.
        python: the Python that runs ``-m trident worker`` on the compute node.
        scheduler_file: the shared scheduler file the workers read (mode 0600).
        lifetime, lifetime_stagger: seconds for the workers' ``--lifetime`` and
            ``--lifetime-stagger``; no lifetime when None.
        nanny: run each worker under a nanny (``--nanny``, the default).
        shebang: the script's first line.
        resource_spec: PBS's ``-l`` selection or SGE's ``-l`` resources; None: PBS
            asks for the cores and memory, SGE for nothing beyond the walltime.
        job_cpu, job_mem: SLURM's ``--cpus-per-task`` and ``--mem`` when they should
            differ from `cores` and `memory` (``job_mem`` as SLURM writes it).
        lsf_units: the unit LSF limits are in (``LSF_UNIT_FOR_LIMITS``: kb, mb, gb).
    """

    name: str
    cores: int
    memory: int
    processes: int = 1
    walltime: str | None = DEFAULT_WALLTIME
    queue: str | None = None
    account: str | None = None
    job_extra_directives: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    job_directives_skip: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    job_script_prologue: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    worker_extra_args: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    python: str = "python3"
    scheduler_file: str = "scheduler.json"
    lifetime: float | None = None
    lifetime_stagger: float = 0.0
    nanny: bool = True
    shebang: str = "#!/usr/bin/env bash"
    resource_spec: str | None = None
    job_cpu: int | None = None
    job_mem: str | None = None
    lsf_units: str = "kb"

    def __attrs_post_init__(self) -> None:
        if self.cores < 1 or self.processes < 1:
            raise ValueError("cores and processes must be at least 1")
        if self.processes > self.cores:
            raise ValueError(f"{self.processes} processes cannot share {self.cores} cores")
        if self.memory < 0:
            raise ValueError("memory must be >= 0")

    @property
    def threads_per_worker(self) -> int:
        return self.cores // self.processes

    @property
    def memory_per_worker(self) -> int:
        return self.memory // self.processes

    @property
    def worker_names(self) -> list[str]:
        """The names the job's workers register under."""
        if self.processes == 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(self.processes)]


def default_lifetime(walltime_seconds: float) -> tuple[float, float]:
    """``(lifetime, stagger)`` for a job's workers: the walltime less a margin of a
    tenth of it (at most `LIFETIME_MARGIN`), staggered by up to half that margin either
    way, so even the last worker asks to retire half a margin before the batch system
    ends the job."""
    margin = min(LIFETIME_MARGIN, walltime_seconds / 10)
    return walltime_seconds - margin, margin / 2


class BatchSystem:
    """One batch system's dialect: directives, commands and job ids.

    Subclasses set `name`, `prefix` (the directive marker), `submit_command`,
    `cancel_command`, `submit_via_stdin` and `job_id_pattern` (a regex whose first
    group is the job id in the submit command's output), and write `directives`.
    """

    name = ""
    prefix = ""
    submit_command: tuple[str, ...] = ()
    cancel_command: tuple[str, ...] = ()
    #: the script goes to the submit command's standard input (LSF's ``bsub < job``)
    submit_via_stdin = False
    job_id_pattern = r"(\d+)"

    def directives(self, spec: JobSpec) -> list[str]:
        """The system's own directive lines for `spec` (prefix included)."""
        raise TypeError(f"{type(self).__name__} is not a batch system")

    def walltime_seconds(self, walltime: str) -> float:
        """Seconds of a walltime: ``[D-]HH:MM:SS``, ``HH:MM`` (hours and minutes) or a
        number of seconds. Raises `ValueError` for anything else."""
        days = 0
        text = walltime.strip()
        if "-" in text:
            day_text, _, text = text.partition("-")
            days = int(day_text)
        parts = [float(part) for part in text.split(":")]
        if len(parts) == 1:
            seconds = parts[0]
        elif len(parts) == 2:
            seconds = parts[0] * 3600 + parts[1] * 60
        elif len(parts) == 3:
            seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
        else:
            raise ValueError(f"cannot read the walltime {walltime!r}")
        return days * 86400 + seconds

    def submit_args(self, script_path: str) -> list[str]:
        """The command that submits the script at `script_path` (for a system that
        reads it from standard input, the script goes there instead)."""
        if self.submit_via_stdin:
            return list(self.submit_command)
        return [*self.submit_command, script_path]

    def cancel_args(self, job_ids: Sequence[str]) -> list[str]:
        """The command that cancels `job_ids`."""
        return [*self.cancel_command, *job_ids]

    def parse_job_id(self, output: str) -> str:
        """The job id in the submit command's `output`; raises `JobIdNotFound`."""
        found = re.search(self.job_id_pattern, output)
        if found is None:
            raise JobIdNotFound(f"no job id in the output of {self.submit_command[0]}: {output!r}")
        return found.group(1)

    def _log_files(self, spec: JobSpec, job_id_marker: str) -> list[str]:
        if spec.log_directory is None:
            return []
        base = f"{spec.log_directory}/{spec.name}-{job_id_marker}"
        return [f"{self.prefix} -o {base}.out", f"{self.prefix} -e {base}.err"]


class SLURMSystem(BatchSystem):
    """SLURM: ``#SBATCH``, ``sbatch`` and ``scancel``."""

    name = "slurm"
    prefix = "#SBATCH"
    submit_command = ("sbatch",)
    cancel_command = ("scancel",)
    job_id_pattern = r"(\d+)"

    def directives(self, spec: JobSpec) -> list[str]:
        p = self.prefix
        lines = [f"{p} -J {spec.name}", *self._log_files(spec, "%j")]
        if spec.queue:
            lines.append(f"{p} -p {spec.queue}")
        if spec.account:
            lines.append(f"{p} -A {spec.account}")
        lines += [f"{p} -n 1", f"{p} --cpus-per-task={spec.job_cpu or spec.cores}"]
        mem = spec.job_mem or (f"{math.ceil(spec.memory / 2**20)}M" if spec.memory else None)
        if mem:
            lines.append(f"{p} --mem={mem}")
        if spec.walltime:
            lines.append(f"{p} -t {spec.walltime}")
        return lines

    def walltime_seconds(self, walltime: str) -> float:
        """SLURM's forms: minutes, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``."""
        text = walltime.strip()
        if "-" in text:
            days, _, rest = text.partition("-")
            fields = [float(f) for f in rest.split(":")] + [0.0, 0.0]
            return int(days) * 86400 + fields[0] * 3600 + fields[1] * 60 + fields[2]
        fields = [float(f) for f in text.split(":")]
        if len(fields) == 1:
            return fields[0] * 60
        if len(fields) == 2:
            return fields[0] * 60 + fields[1]
        return super().walltime_seconds(text)


class PBSSystem(BatchSystem):
    """PBS Pro / OpenPBS / Torque: ``#PBS``, ``qsub`` and ``qdel``; job ids such as
    ``1234.server`` are kept whole."""

    name = "pbs"
    prefix = "#PBS"
    submit_command = ("qsub",)
    cancel_command = ("qdel",)
    job_id_pattern = r"^\s*(\d+(?:\.\S+)?)"

    def directives(self, spec: JobSpec) -> list[str]:
        p = self.prefix
        lines = [f"{p} -N {spec.name}"]
        if spec.log_directory is not None:  # PBS names the files after the job itself
            lines += [f"{p} -o {spec.log_directory}/", f"{p} -e {spec.log_directory}/"]
        if spec.queue:
            lines.append(f"{p} -q {spec.queue}")
        if spec.account:
            lines.append(f"{p} -A {spec.account}")
        resources = spec.resource_spec
        if resources is None:
            resources = f"select=1:ncpus={spec.cores}"
            if spec.memory:
                resources += f":mem={math.ceil(spec.memory / 2**20)}MB"
        lines.append(f"{p} -l {resources}")
        if spec.walltime:
            lines.append(f"{p} -l walltime={spec.walltime}")
        return lines


class SGESystem(BatchSystem):
    """Sun/Son of/Univa Grid Engine: ``#$``, ``qsub`` and ``qdel``."""

    name = "sge"
    prefix = "#$"
    submit_command = ("qsub",)
    cancel_command = ("qdel",)
    job_id_pattern = r"[Yy]our job(?:-array)? (\d+)"

    def directives(self, spec: JobSpec) -> list[str]:
        p = self.prefix
        lines = [f"{p} -N {spec.name}"]
        if spec.queue:
            lines.append(f"{p} -q {spec.queue}")
        if spec.account:
            lines.append(f"{p} -P {spec.account}")
        if spec.resource_spec:
            lines.append(f"{p} -l {spec.resource_spec}")
        if spec.walltime:
            lines.append(f"{p} -l h_rt={spec.walltime}")
        lines += [f"{p} -cwd", f"{p} -j y"]
        if spec.log_directory is not None:
            lines += [f"{p} -o {spec.log_directory}/", f"{p} -e {spec.log_directory}/"]
        return lines


_LSF_UNITS = {"kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}


class LSFSystem(BatchSystem):
    """IBM Spectrum LSF: ``#BSUB``, ``bsub < script`` and ``bkill``; walltimes are
    ``HH:MM``."""

    name = "lsf"
    prefix = "#BSUB"
    submit_command = ("bsub",)
    cancel_command = ("bkill",)
    submit_via_stdin = True
    job_id_pattern = r"<(\d+)>"

    def directives(self, spec: JobSpec) -> list[str]:
        p = self.prefix
        lines = [f"{p} -J {spec.name}", *self._log_files(spec, "%J")]
        if spec.queue:
            lines.append(f"{p} -q {spec.queue}")
        if spec.account:
            lines.append(f"{p} -P {spec.account}")
        lines += [f"{p} -n {spec.cores}", f'{p} -R "span[hosts=1]"']
        if spec.memory:
            unit = _LSF_UNITS[spec.lsf_units.lower()]
            amount = math.ceil(spec.memory / unit)
            lines += [f"{p} -M {amount}", f'{p} -R "rusage[mem={amount}]"']
        if spec.walltime:
            lines.append(f"{p} -W {spec.walltime}")
        return lines


SLURM = SLURMSystem()
PBS = PBSSystem()
SGE = SGESystem()
LSF = LSFSystem()


def worker_command(spec: JobSpec, name: str) -> list[str]:
    """The ``trident worker`` command line of one worker of the job (no secrets: the
    credential is in the scheduler file)."""
    command = [
        spec.python,
        "-m",
        "trident",
        "worker",
        "--scheduler-file",
        spec.scheduler_file,
        "--name",
        name,
        "--nthreads",
        str(spec.threads_per_worker),
        "--memory-limit",
        str(spec.memory_per_worker) if spec.memory else "none",
    ]
    if spec.lifetime is not None:
        command += ["--lifetime", f"{spec.lifetime:g}"]
        command += ["--lifetime-stagger", f"{spec.lifetime_stagger:g}"]
    if spec.interface:
        command += ["--interface", spec.interface]
    if spec.local_directory:
        command += ["--local-directory", spec.local_directory]
    if not spec.nanny:
        command.append("--no-nanny")
    return [*command, *spec.worker_extra_args]


def render_job_script(system: BatchSystem, spec: JobSpec) -> str:
    """The whole job script for `spec` under `system` (see the module docstring)."""
    directives = system.directives(spec)
    directives += [f"{system.prefix} {line}" for line in spec.job_extra_directives]
    directives = [
        line for line in directives if not any(skip in line for skip in spec.job_directives_skip)
    ]
    lines = [spec.shebang, "", *directives, "", *spec.job_script_prologue]
    if spec.processes == 1:
        lines.append("exec " + shlex.join(worker_command(spec, spec.name)))
    else:
        # Several workers share the job; a signal to the script reaches all of them.
        parts = [shlex.quote(part) for part in worker_command(spec, spec.name)]
        parts[parts.index("--name") + 1] = shlex.quote(spec.name) + '-"$i"'
        command = " ".join(parts)
        lines += [
            "pids=()",
            f"for i in $(seq 0 {spec.processes - 1}); do",
            f"    {command} &",
            '    pids+=("$!")',
            "done",
            "trap 'kill -TERM \"${pids[@]}\" 2>/dev/null; wait' TERM INT",
            "wait",
        ]
    return "\n".join(lines) + "\n"
