"""Why a worker process ended: exit code, signal, out of memory, in one line.

`describe_exit` turns what a nanny observed into the fields of `WorkerDied`. Out of
memory is recognised three ways: the nanny itself terminated the worker for using too
much memory; the kernel's OOM killer fired in the cgroup while the worker died of
SIGKILL (`oom_kill_count`, cgroup v2 or v1); or the worker's last stderr lines name a
``MemoryError``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import attrs

_CGROUP_ROOT = Path("/sys/fs/cgroup")

#: A worker process exits with this code when it gave up on a lost scheduler.
SCHEDULER_LOST_EXIT_CODE = 75


@attrs.frozen
class ExitReason:
    """How a worker process ended."""

    exit_code: int | None
    signal: str | None
    out_of_memory: bool
    reason: str


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(
    returncode: int,
    *,
    stderr_tail: list[str],
    memory_kill: str | None = None,
    oom_killed: bool = False,
) -> ExitReason:
    """Classify an exit.

    Arguments:
        returncode: the process's return code (negative: the signal that ended it).
        stderr_tail: its last stderr lines.
        memory_kill: why the nanny terminated it for memory, if it did.
        oom_killed: whether the kernel's OOM killer fired meanwhile.
    """
    if returncode < 0:
        exit_code, name = None, _signal_name(-returncode)
    else:
        exit_code, name = returncode, None
    if memory_kill is not None:
        return ExitReason(exit_code, name, True, f"out of memory: {memory_kill}")
    if name == "SIGKILL" and oom_killed:
        return ExitReason(
            exit_code, name, True, "out of memory: killed by the kernel's OOM killer (SIGKILL)"
        )
    memory_error = any("MemoryError" in line for line in stderr_tail[-5:])
    if name is not None:
        reason = f"killed by {name}"
    elif exit_code == 0:
        reason = "exited with code 0 without being asked to"
    elif exit_code == SCHEDULER_LOST_EXIT_CODE:
        reason = f"exited with code {exit_code}: it could not reach the scheduler any more"
    else:
        reason = f"exited with code {exit_code}"
        last = next((line.strip() for line in reversed(stderr_tail) if line.strip()), "")
        if last:
            reason += f": {last}"
    if memory_error:
        return ExitReason(exit_code, name, True, f"out of memory (MemoryError): {reason}")
    return ExitReason(exit_code, name, False, reason)


def _read_counter(path: Path, field: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == field:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def oom_kill_count() -> int | None:
    """How many processes the kernel's OOM killer has killed in this process's cgroup.

    None when the cgroup files are not readable (not Linux, or not mounted).
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":
            candidates = [_CGROUP_ROOT / relative / "memory.events", _CGROUP_ROOT / "memory.events"]
            field = "oom_kill"
        elif "memory" in controllers.split(","):
            base = _CGROUP_ROOT / "memory"
            candidates = [base / relative / "memory.oom_control", base / "memory.oom_control"]
            field = "oom_kill"
        else:
            continue
        for candidate in candidates:
            count = _read_counter(candidate, field)
            if count is not None:
                return count
    return None
