"""A single-node SLURM for tests: munged, slurmctld and slurmd from the distribution's
packages (Debian: ``slurm-wlm``, ``munge``), run as root with a configuration of their
own in a private directory (their own ports, munge socket and key, state and logs), so
they touch nothing of a SLURM the machine may already have.

The daemons run in the background, as they would on a cluster (not as children of the
test process); `LocalSlurm.stop` cancels every job and stops them by their pid files.
Clients (``sbatch``, ``squeue``, ``scancel``) find this SLURM through ``SLURM_CONF``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
#: Set (CI does, in .ci/run) to fail instead of skipping where SLURM cannot run.
REQUIRED_ENV = "TRIDENT_REQUIRE_SLURM"
READY_TIMEOUT = 60.0


def _find(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).exists()), None
    )


def missing() -> str | None:
    """Why this machine cannot run the test SLURM, or None when it can."""
    if os.geteuid() != 0:
        return "the test SLURM runs its daemons as root"
    absent = [name for name in (*DAEMONS, *CLIENTS) if _find(name) is None]
    if absent:
        return f"missing {', '.join(absent)} (apt-get install slurm-wlm munge)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalSlurm:
    """The daemons of a one-node SLURM whose files live in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.node = socket.gethostname().split(".")[0]
        self.conf = directory / "slurm.conf"
        self.munge_socket = directory / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _config(self) -> str:
        d = self.directory
        cpus = os.cpu_count() or 1
        memory_mb = int(psutil.virtual_memory().total / 2**20 * 0.9)
        return "\n".join(
            [
                "ClusterName=tridenttest",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.munge_socket}",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={d}/state",
                f"SlurmdSpoolDir={d}/spool",
                f"SlurmctldPidFile={d}/slurmctld.pid",
                f"SlurmdPidFile={d}/slurmd.pid",
                f"SlurmctldLogFile={d}/slurmctld.log",
                f"SlurmdLogFile={d}/slurmd.log",
                # No cgroups: the test machine may be a container without them.
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "MpiDefault=none",
                "SwitchType=switch/none",
                "SchedulerType=sched/builtin",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "ReturnToService=2",
                "MinJobAge=600",  # finished jobs stay visible to scontrol for the test
                f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} "
                f"RealMemory={memory_mb} State=UNKNOWN",
                "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def run(self, *args: str, check: bool = True) -> str:
        """Run a SLURM client command against this SLURM; return its output."""
        result = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        """Start munged, slurmctld and slurmd; return once the node is idle. Raises
        `RuntimeError` with the daemons' log tails when it does not get there."""
        d = self.directory
        for sub in ("state", "spool"):
            (d / sub).mkdir(mode=0o700)
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text(self._config())
        self._daemon(
            "munged",
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={key}",
            f"--log-file={d}/munged.log",
            f"--pid-file={d}/munged.pid",
            f"--seed-file={d}/munged.seed",
        )
        self._daemon("slurmctld", "-f", str(self.conf))
        self._daemon("slurmd", "-f", str(self.conf))
        deadline = time.monotonic() + READY_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%t", check=False).strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the test SLURM did not come up (node {state!r}):\n{self.logs()}")

    def _daemon(self, name: str, *args: str) -> None:
        # Each forks into the background by itself and writes its pid file.
        subprocess.run([_find(name) or name, *args], env=self.env, check=True, timeout=30)

    def logs(self) -> str:
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.directory / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def jobs(self) -> list[str]:
        """Ids of the jobs pending or running."""
        return self.run("squeue", "-h", "-o", "%i").split()

    def job_state(self, job_id: str) -> str:
        """``JobState`` of a job, finished ones included (while SLURM remembers them)."""
        out = self.run("scontrol", "show", "job", job_id, check=False)
        for field in out.split():
            if field.startswith("JobState="):
                return field.removeprefix("JobState=")
        return ""

    def stop(self) -> None:
        """Cancel every job, then stop the daemons (SIGTERM, then SIGKILL)."""
        self.run("scancel", "--user", "root", check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.directory / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                process = psutil.Process(pid)
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
            except psutil.TimeoutExpired:
                process.kill()
            except psutil.NoSuchProcess:
                pass
