"""`JobQueueCluster` and its four batch systems: workers as batch jobs, dask-jobqueue's way.

The scheduler runs in this process (in trident's background loop, or the caller's trio
loop when asynchronous), listening on `interface` (or `host`, else the interface of the
default route). Each job runs `processes` workers that share its `cores` and `memory`;
`scale(n)` asks for enough jobs for `n` workers, ``scale(jobs=...)`` for a number of
jobs, and `adapt` submits and cancels jobs as the load asks (see `ClusterManager`).
Jobs are tracked by the id their submit command printed; a job whose workers all left
(their lifetime ran out, the job ended) leaves `workers`, and is not replaced (as in
dask-jobqueue: `adapt` replaces jobs, a fixed `scale` does not).

Queued jobs (submitted, none of their workers registered yet: `queued_jobs`) go first
when the cluster shrinks, as in dask's ``SpecCluster`` and ``Adaptive``: `scale` down
cancels queued jobs before it retires any running worker, and `adapt` cancels the queued
jobs beyond the number of workers it wants (once it wanted fewer `wait_count` rounds in
a row), so a job nobody needs any more never starts only to be retired.

Credentials. The workers read the scheduler's address, the cluster token and the TLS
certificate's pin from a scheduler file of mode 0600 in `shared_directory` (default
``~/.trident/jobqueue``, which HPC sites share between login and compute nodes), named
on their command line with ``--scheduler-file``. Not in the job script or its argv, which
``squeue``/``qstat``/``ps`` show to other users and the batch system keeps; not in the
job's environment either, which PBS's ``qstat -f`` and SGE's ``qstat -j`` print to other
users too (``-V``), and SLURM keeps in its state files. A 0600 file in the user's own
directory is readable by that user alone on every node that mounts it, and it is removed
when the cluster closes.

On a non-loopback address the scheduler serves TLS with a throwaway certificate; the
workers check it by its pin and authenticate with the token (they need no certificate
files, which stay on this machine). ``protocol="tcp"`` serves plain TCP with the token
alone, for trusted networks.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import trio

from ..._public import publish
from ..._scheduler_file import write_scheduler_file
from ...cluster import adaptive
from ...cluster.local import DEFAULT_DASHBOARD_PORT, default_layout
from ...cluster.manager import ClusterManager
from ...comm.address import format_address
from ...comm.routes import default_host, interface_address, is_loopback
from ...dashboard import dashboard_for
from ...scheduler.actor import Scheduler
from ...security import Security
from ...sizes import parse_duration, parse_memory
from .scripts import (
    DEFAULT_WALLTIME,
    LSF,
    PBS,
    SGE,
    SLURM,
    BatchSystem,
    JobSpec,
    default_lifetime,
    render_job_script,
)

logger = logging.getLogger("trident.deploy.jobqueue")

_AUTO = "auto"
#: Seconds between two looks at which jobs' workers are on the scheduler.
WATCH_INTERVAL = 1.0
#: Seconds a job's workers must stay away before the job counts as ended (a nanny
#: restarting a worker that died brings it back sooner).
GONE_GRACE = 10.0
#: Seconds a submit or cancel command may take.
COMMAND_TIMEOUT = 60.0


def _expanded(path: str | os.PathLike[str] | None) -> str | None:
    """`path` with ``~`` expanded here: batch directives and quoted arguments do not."""
    return None if path is None else os.path.expanduser(os.fspath(path))


class JobSubmissionError(RuntimeError):
    """The batch system's submit command failed or printed no job id."""


@attrs.define(eq=False)
class Job:
    """A submitted job: its name, the batch system's id, its workers' names."""

    name: str
    job_id: str
    worker_names: list[str]
    submitted: float = attrs.field(factory=time.time)
    #: a worker of the job registered with the scheduler at least once
    started: bool = False
    #: since when none of its workers is on the scheduler (after it started)
    gone_since: float | None = None


class JobQueueCluster(ClusterManager):
    """A scheduler in this process and workers in batch jobs (dask-jobqueue's
    ``JobQueueCluster``); use `SLURMCluster`, `PBSCluster`, `SGECluster` or `LSFCluster`.

    Arguments (dask-jobqueue's names):
        n_workers: workers to start with (rounded up to whole jobs).
        cores: cores per job; memory: memory per job (``"16GB"`` or bytes).
        processes: workers per job, sharing its cores and memory (default: about the
            square root of `cores`, as dask-jobqueue picks).
        walltime: the job's time limit in the batch system's notation (``"01:00:00"``;
            LSF: ``"01:00"``); None asks for none.
        queue, account: where to submit and who pays (``project`` is the same as
            `account`, dask-jobqueue's older name).
        name: the jobs' name prefix: job *k* is ``{name}-{k}``, its workers ``{name}-{k}``
            (or ``{name}-{k}-{i}`` with several processes).
        job_extra_directives, job_directives_skip, job_script_prologue,
        worker_extra_args, interface, local_directory, log_directory, python, shebang,
        nanny: as in `JobSpec` (``python`` defaults to this interpreter).
        lifetime: when each worker asks to be retired (its data moved first) so it
            leaves before the walltime: ``"auto"`` (default) derives it from the walltime
            (`default_lifetime`), None never, else a duration (``"55m"``, seconds).
        lifetime_stagger: spreads the lifetimes by up to this much either way (default
            with ``"auto"``: half the margin; else 0).
        shared_directory: where the scheduler file for the jobs is written (see the
            module docstring); must be visible on the compute nodes.
        host, scheduler_port, protocol, dashboard_address: where the scheduler listens
            (`interface` wins over `host`), ``"tls"`` or ``"tcp"``, and its dashboard
            (``":8787"`` on the scheduler's host by default; None serves none).
        security: a `Security` whose token the cluster uses (default: a random token).
        submit_command_extra, cancel_command_extra: more arguments for the submit and
            cancel commands (before the script / job ids).
        asynchronous: start with ``async with`` / ``await``.

    Batch-system options: SLURM's ``job_cpu`` and ``job_mem``; PBS's and SGE's
    ``resource_spec``; LSF's ``lsf_units``.
    """

    #: the batch system's dialect (set by each subclass)
    system: ClassVar[BatchSystem]
    #: options only this batch system takes (`JobSpec` fields)
    system_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        n_workers: int = 0,
        *,
        cores: int,
        memory: int | str,
        processes: int | None = None,
        walltime: str | None = DEFAULT_WALLTIME,
        queue: str | None = None,
        account: str | None = None,
        project: str | None = None,
        name: str = "trident-worker",
        job_extra_directives: list[str] | tuple[str, ...] = (),
        job_directives_skip: list[str] | tuple[str, ...] = (),
        job_script_prologue: list[str] | tuple[str, ...] = (),
        worker_extra_args: list[str] | tuple[str, ...] = (),
        interface: str | None = None,
        local_directory: str | os.PathLike[str] | None = None,
        log_directory: str | os.PathLike[str] | None = None,
        python: str | None = None,
        shebang: str = "#!/usr/bin/env bash",
        nanny: bool = True,
        lifetime: float | str | timedelta | None = _AUTO,
        lifetime_stagger: float | str | timedelta | None = None,
        shared_directory: str | os.PathLike[str] | None = None,
        host: str | None = None,
        scheduler_port: int = 0,
        protocol: str | None = None,
        dashboard_address: str | int | None = _AUTO,
        security: Security | None = None,
        submit_command_extra: list[str] | tuple[str, ...] = (),
        cancel_command_extra: list[str] | tuple[str, ...] = (),
        asynchronous: bool = False,
        **system_options: Any,
    ):
        unknown = set(system_options) - self.system_options
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword arguments: "
                f"{', '.join(sorted(unknown))}"
            )
        if protocol not in (None, "tcp", "tls"):
            raise ValueError(f"protocol must be 'tcp' or 'tls', got {protocol!r}")
        if processes is None:
            processes = default_layout(int(cores), processes=True)[0]
        if walltime is not None and lifetime == _AUTO:
            auto_lifetime, auto_stagger = default_lifetime(self.system.walltime_seconds(walltime))
            lifetime_seconds: float | None = auto_lifetime
            stagger = auto_stagger if lifetime_stagger is None else parse_duration(lifetime_stagger)
        else:
            lifetime_seconds = None if lifetime in (None, _AUTO) else parse_duration(lifetime)
            stagger = 0.0 if lifetime_stagger is None else parse_duration(lifetime_stagger)
        self.job_name = name
        self.interface = interface
        self.shared_directory = Path(
            _expanded(shared_directory) or Path.home() / ".trident" / "jobqueue"
        )
        self.scheduler_file = self.shared_directory / f"{name}-{secrets.token_hex(6)}.json"
        self._spec = JobSpec(
            name=name,
            cores=int(cores),
            memory=parse_memory(memory),
            processes=int(processes),
            walltime=walltime,
            queue=queue,
            account=account if account is not None else project,
            job_extra_directives=job_extra_directives,
            job_directives_skip=job_directives_skip,
            job_script_prologue=job_script_prologue,
            worker_extra_args=worker_extra_args,
            interface=interface,
            local_directory=_expanded(local_directory),
            log_directory=_expanded(log_directory),
            python=python or sys.executable,
            scheduler_file=str(self.scheduler_file),
            lifetime=lifetime_seconds,
            lifetime_stagger=stagger,
            nanny=nanny,
            shebang=shebang,
            **system_options,
        )
        self.processes = self._spec.processes
        self.threads_per_worker = self._spec.threads_per_worker  # what `Adaptive` reads
        self._host = host
        self._scheduler_port = int(scheduler_port)
        self._protocol = protocol
        self._dashboard_option = dashboard_address
        self._submit_extra = tuple(submit_command_extra)
        self._cancel_extra = tuple(cancel_command_extra)
        self._scheduler_actor: Scheduler | None = None
        self._private: tempfile.TemporaryDirectory[str] | None = None
        #: what the manager did (submissions, cancellations, failures): `get_logs`
        self._events: collections.deque[str] = collections.deque(maxlen=1000)
        if security is None:
            security = Security()
        if security.token is None:
            security = security.with_token(secrets.token_urlsafe(24))
        super().__init__(
            security=security,
            n_workers=math.ceil(int(n_workers) / self.processes),
            asynchronous=asynchronous,
            worker_group_size=self.processes,
        )
        self._start()

    # --- what is submitted ----------------------------------------------------------

    def job_spec(self, name: str | None = None) -> JobSpec:
        """The `JobSpec` of the job called `name` (default: the next one)."""
        return attrs.evolve(self._spec, name=name or f"{self.job_name}-{self._next_name}")

    def job_script(self) -> str:
        """The script the next job will run, as it will be submitted."""
        return render_job_script(self.system, self.job_spec())

    def _new_worker_name(self) -> str:
        name = f"{self.job_name}-{self._next_name}"
        self._next_name += 1
        return name

    # --- the hooks ----------------------------------------------------------------------

    async def _start_scheduler(self) -> str:
        assert self._nursery is not None
        if self.interface is not None:
            host = interface_address(self.interface)
        else:
            host = self._host or await default_host()
        protocol = self._protocol or ("tcp" if is_loopback(host) else "tls")
        self._private = tempfile.TemporaryDirectory(prefix="trident-jobqueue-")
        if protocol == "tls" and not self.security.tls:
            self.security = Security.self_signed(
                self._private.name, token=self.security.token, require_client_cert=False
            )
        dashboard = self._dashboard_option
        if dashboard == _AUTO:
            dashboard = f"{host}:{DEFAULT_DASHBOARD_PORT}"
        elif isinstance(dashboard, str) and dashboard.startswith(":"):
            dashboard = f"{host}{dashboard}"
        scheduler = self._scheduler_actor = Scheduler(
            format_address(protocol, host, self._scheduler_port),
            security=self.security,
            dashboard_address=dashboard,
            dashboard_factory=dashboard_for if dashboard is not None else None,
        )
        await self._nursery.start(scheduler.serve)
        self.shared_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # What a job needs: the address, the token and the certificate's pin (no
        # certificate files: they stay on this machine).
        for_jobs = Security(
            token=self.security.token, tls_fingerprint=self.security.tls_fingerprint
        )
        write_scheduler_file(self.scheduler_file, scheduler.address, for_jobs)
        self._nursery.start_soon(self._watch_jobs)
        return scheduler.address

    async def _start_worker(self, name: str) -> Job:
        spec = self.job_spec(name)
        script = render_job_script(self.system, spec)
        assert self._private is not None
        path = Path(self._private.name) / f"{name}.sh"
        path.write_text(script)
        args = self.system.submit_args(str(path))
        args[1:1] = self._submit_extra
        result = await self._run(
            args, stdin=script.encode() if self.system.submit_via_stdin else b""
        )
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            self._log(f"submitting {name} failed (exit {result.returncode}): {message}")
            raise JobSubmissionError(f"{' '.join(args)} exited with {result.returncode}: {message}")
        output = result.stdout.decode(errors="replace")
        try:
            job_id = self.system.parse_job_id(output)
        except ValueError as exc:
            raise JobSubmissionError(str(exc)) from None
        self._log(f"submitted {name} as job {job_id}")
        return Job(name, job_id, spec.worker_names)

    async def _stop_worker(self, name: str, handle: Job) -> None:
        args = self.system.cancel_args([handle.job_id])
        args[1:1] = self._cancel_extra
        try:
            result = await self._run(args)
        except (OSError, trio.TooSlowError) as exc:  # never fatal to the cluster
            self._log(f"cancelling job {handle.job_id} ({name}): {exc!r}")
            return
        if result.returncode == 0:
            self._log(f"cancelled job {handle.job_id} ({name})")
        else:  # most often: the job already ended
            message = result.stderr.decode(errors="replace").strip()
            self._log(f"cancelling job {handle.job_id} ({name}): {message}")

    async def _run(self, args: list[str], stdin: bytes = b"") -> Any:
        with trio.fail_after(COMMAND_TIMEOUT):
            return await trio.run_process(
                args, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
            )

    def _handle_addresses(self, handle: Job) -> set[str]:
        wanted = set(handle.worker_names)
        return {ws.address for ws in self._registered() if ws.name in wanted}

    def _registered(self) -> list[Any]:
        scheduler = self._scheduler_actor
        return list(scheduler.state.workers.values()) if scheduler is not None else []

    def _manager_log(self) -> str:
        return "\n".join(self._events)

    def _log(self, line: str) -> None:
        logger.info("%s: %s", type(self).__name__, line)
        self._events.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}")

    async def _watch_jobs(self) -> None:
        """Mark jobs started once a worker registered; a started job whose workers
        stayed away for `GONE_GRACE` seconds (lifetime over, job ended or killed)
        leaves `workers`, and is cancelled in case something of it still runs."""
        while True:
            await trio.sleep(WATCH_INTERVAL)
            present = {ws.name for ws in self._registered()}
            now = trio.current_time()
            for name, job in list(self._workers.items()):
                if present.intersection(job.worker_names):
                    job.started, job.gone_since = True, None
                elif job.started:
                    job.gone_since = job.gone_since if job.gone_since is not None else now
                    if now - job.gone_since >= GONE_GRACE:
                        self._log(f"job {job.job_id} ({name}): its workers left")
                        self._worker_left(name, job)
                        await self._stop_worker(name, job)

    def _closed(self) -> None:
        self.scheduler_file.unlink(missing_ok=True)
        if self._private is not None:
            self._private.cleanup()

    # --- queued jobs go first -----------------------------------------------------------

    def _started_names(self) -> set[str]:
        """Names of the jobs one of whose workers registered (now, or once before)."""
        present = {ws.name for ws in self._registered()}
        return {
            name
            for name, job in self._workers.items()
            if job.started or present.intersection(job.worker_names)
        }

    async def _scale_down_to(self, groups: int) -> None:
        # `_scale_to` keeps the first `groups` jobs: put the queued ones last, so that
        # they are cancelled before a running worker is retired (the oldest queued job,
        # the nearest to starting, is kept longest).
        if groups < len(self._workers):
            started = self._started_names()
            order = sorted(self._workers, key=lambda name: name not in started)
            self._workers = {name: self._workers[name] for name in order}
        await super()._scale_down_to(groups)

    def scale_down(self, workers: list[str]) -> Any:
        """Stop jobs: those of the workers at these addresses (what `Adaptive` calls once
        it retired them), and those named (job names, as in `jobs`): a queued job is
        cancelled at once, a started one has its workers retired first (their data
        moved). A coroutine if asynchronous."""
        return self._in_mode(self._scale_down_jobs, list(workers))

    async def _scale_down_jobs(self, workers: list[str]) -> None:
        named = [w for w in workers if w in self._workers]
        started = self._started_names()
        # A named job that started since it was named (its worker registered meanwhile)
        # is retired like any other.
        retire = [
            a for n in named if n in started for a in self._handle_addresses(self._workers[n])
        ]
        await self._retire_before_stop(retire)
        async with trio.open_nursery() as stopping:
            for name in named:
                if name in self._workers:
                    stopping.start_soon(self._stop_one, name, self._workers[name])
        await self._scale_down_here([w for w in workers if w not in named])

    def adapt(
        self,
        *args: Any,
        Adaptive: type[adaptive.Adaptive] | None = None,  # dask's spelling
        **kwargs: Any,
    ) -> adaptive.Adaptive:
        """As `ClusterManager.adapt`; every round also cancels the queued jobs beyond
        the workers wanted (see the module docstring), whatever ``Adaptive=`` class
        decides the rest."""
        policy = self._adaptive_class if Adaptive is None else Adaptive
        if not issubclass(policy, _CancelsQueuedJobs):
            policy = type(policy.__name__, (_CancelsQueuedJobs, policy), {})
        return super().adapt(*args, Adaptive=policy, **kwargs)

    # --- information ----------------------------------------------------------------

    @property
    def queued_jobs(self) -> list[str]:
        """Names of the jobs submitted none of whose workers registered yet (queued in
        the batch system, or starting), oldest first."""
        started = self._started_names()
        return [name for name in self._workers if name not in started]

    @property
    def scheduler(self) -> Scheduler | None:
        """The scheduler actor running in this process (for `Adaptive` and tests)."""
        return self._scheduler_actor

    @property
    def jobs(self) -> dict[str, str]:
        """Job name -> the batch system's job id, of the jobs submitted and not ended."""
        return {name: job.job_id for name, job in self._workers.items()}


class _CancelsQueuedJobs(adaptive.Adaptive):
    """`Adaptive` for a `JobQueueCluster`: each round first names the queued jobs beyond
    the workers wanted (the newest first) and cancels those named `wait_count` rounds in
    a row, as dask's ``Adaptive`` closes requested workers that have not arrived before
    it retires any; then decides as its other base class does. The workers wanted: the
    ``n`` of `get_scale_up_kwargs` when `should_scale_up`, else `recommend_workers`'s.
    Cancellations go to `log` as ``(time, "cancel", [job name, ...])``.
    """

    cluster: JobQueueCluster

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: queued job name -> rounds in a row it was named to cancel
        self.queued_counts: dict[str, int] = {}

    def queued_jobs_to_cancel(self) -> list[str]:
        """The queued jobs to cancel this round (counts the rounds in `queued_counts`)."""
        cluster = self.cluster
        if self.should_scale_up():
            wanted = int(self.get_scale_up_kwargs()["n"])
        else:
            wanted = self._wanted(self._work())
        jobs_wanted = math.ceil(wanted / cluster.worker_group_size)
        queued = cluster.queued_jobs
        excess = min(len(queued), len(cluster.jobs) - jobs_wanted)
        named = queued[len(queued) - excess :] if excess > 0 else []
        counts = {name: self.queued_counts.get(name, 0) + 1 for name in named}
        due = [name for name, count in counts.items() if count >= self.wait_count]
        self.queued_counts = {n: c for n, c in counts.items() if c < self.wait_count}
        return due

    async def adapt(self) -> None:
        """Cancel the queued jobs due (`queued_jobs_to_cancel`), then run the round."""
        due = self.queued_jobs_to_cancel()
        if due:
            self.log.append((time.time(), "cancel", due))
            logger.info("adaptive: cancelling %d queued jobs", len(due))
            await adaptive.call_cluster(self.cluster.scale_down, due)
        await super().adapt()


class SLURMCluster(JobQueueCluster):
    """Workers in SLURM jobs (``sbatch``, ``scancel``); see `JobQueueCluster`. Takes
    ``job_cpu`` and ``job_mem`` to ask SLURM for other than `cores` and `memory`."""

    system = SLURM
    system_options = frozenset({"job_cpu", "job_mem"})


class PBSCluster(JobQueueCluster):
    """Workers in PBS jobs (``qsub``, ``qdel``); see `JobQueueCluster`. Takes
    ``resource_spec`` for the ``-l`` selection (default
    ``select=1:ncpus=<cores>:mem=<memory>``)."""

    system = PBS
    system_options = frozenset({"resource_spec"})


class SGECluster(JobQueueCluster):
    """Workers in Grid Engine jobs (``qsub``, ``qdel``); see `JobQueueCluster`. Takes
    ``resource_spec`` for ``-l`` (e.g. ``"m_mem_free=16G"``, site-specific)."""

    system = SGE
    system_options = frozenset({"resource_spec"})


class LSFCluster(JobQueueCluster):
    """Workers in LSF jobs (``bsub < script``, ``bkill``); see `JobQueueCluster`.
    Walltimes are ``HH:MM``; ``lsf_units`` is the site's ``LSF_UNIT_FOR_LIMITS``
    (default kb) in which ``-M`` is written."""

    system = LSF
    system_options = frozenset({"lsf_units"})

    def __init__(self, n_workers: int = 0, *, walltime: str | None = "00:30", **kwargs: Any):
        super().__init__(n_workers, walltime=walltime, **kwargs)


publish(globals())
