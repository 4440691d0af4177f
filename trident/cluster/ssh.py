"""`SSHCluster`: a scheduler and workers on other machines, started over ssh.

As dask's ``SSHCluster``: the first host runs the scheduler, every further host one
worker (repeat a host for more). Processes start through the system's OpenSSH client
(``ssh -o BatchMode=yes``: keys or an agent, never a password prompt), each running
``python -m trident.cluster.ssh_remote`` (`trident.cluster.ssh_remote`) on its host. The
cluster token (with the scheduler certificate's pin) travels on that process's
standard input, never on a command line. Closing the cluster ends that input and the
remote process stops; so does losing the ssh connection (ssh's keep-alives notice a
host that dropped off the network within `SERVER_ALIVE_INTERVAL` x
`SERVER_ALIVE_COUNT_MAX` seconds), so nothing outlives its cluster. The scheduler
itself notices a worker that went silent and recomputes its lost results elsewhere.

Connections: clients and workers reach the scheduler over TLS with a throwaway
certificate made on its host (``scheduler_options={"tls": False}`` for plain TCP on a
trusted network); every peer proves the token. Workers listen on plain TCP on the
interface that faces the scheduler (their certificates would have to be copied to
each host), token-authenticated like every connection.
"""

from __future__ import annotations

import collections
import contextlib
import json
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from .._public import publish
from ..security import Security
from .manager import START_TIMEOUT, ClusterManager

#: Seconds between ssh's keep-alive probes, and how many may go unanswered before ssh
#: gives the connection (and so the host) up.
SERVER_ALIVE_INTERVAL = 5
SERVER_ALIVE_COUNT_MAX = 3
#: Seconds a remote process is given to stop once its input ended, before its ssh
#: client is killed (which also ends the remote session).
STOP_TIMEOUT = 10.0
#: Lines of the remote processes' standard error kept for `get_logs`.
LOG_LINES = 1000

#: `connect_options` keys (dask's, from asyncssh) and the ssh options they become.
CONNECT_OPTIONS = frozenset(
    {"port", "username", "client_keys", "known_hosts", "config", "options", "connect_timeout"}
)


def ssh_command(host: str, remote_command: str, connect_options: Mapping[str, Any]) -> list[str]:
    """The OpenSSH command line that runs `remote_command` on `host`.

    `connect_options` (dask's names): ``port``, ``username``, ``client_keys`` (a path
    or list of private key files), ``known_hosts`` (a file; None: no host key
    checking, as asyncssh's ``known_hosts=None``), ``config`` (an ssh_config file),
    ``connect_timeout`` (seconds, default 10), ``options`` (more ``-o`` options, a
    dict). Raises `TypeError` for another key. Never prompts: ``BatchMode=yes``.
    """
    unknown = set(connect_options) - CONNECT_OPTIONS
    if unknown:
        known = sorted(CONNECT_OPTIONS)
        raise TypeError(f"unknown connect_options {sorted(unknown)}; known: {known}")
    options: dict[str, Any] = {
        "BatchMode": "yes",
        "ServerAliveInterval": SERVER_ALIVE_INTERVAL,
        "ServerAliveCountMax": SERVER_ALIVE_COUNT_MAX,
        "ConnectTimeout": connect_options.get("connect_timeout", 10),
    }
    if "known_hosts" in connect_options:
        known = connect_options["known_hosts"]
        if known is None:
            options |= {"StrictHostKeyChecking": "no", "UserKnownHostsFile": "/dev/null"}
        else:
            options |= {"StrictHostKeyChecking": "yes", "UserKnownHostsFile": str(known)}
    options |= dict(connect_options.get("options") or {})
    command = ["ssh", "-T", "-o", "LogLevel=ERROR"]
    if "config" in connect_options:
        command += ["-F", str(connect_options["config"])]
    for key, value in options.items():
        command += ["-o", f"{key}={value}"]
    if "port" in connect_options:
        command += ["-p", str(connect_options["port"])]
    if "username" in connect_options:
        command += ["-l", str(connect_options["username"])]
    keys = connect_options.get("client_keys") or []
    for key in [keys] if isinstance(keys, str) else keys:
        command += ["-i", str(key)]
    return [*command, host, remote_command]


def _host_name(host: str) -> str:
    """`host` without a ``user@`` prefix."""
    return host.rsplit("@", 1)[-1]


@attrs.define(eq=False)
class RemoteProcess:
    """A process `SSHCluster` runs on `host` through the local ssh client `process`.

    `report` is what the remote side said once ready (its ``address``, ...); `exited`
    is set once the ssh client ended (the remote process stopped or the host is lost).
    """

    host: str
    name: str
    process: trio.Process
    report: dict[str, Any] = attrs.field(factory=dict)
    exited: trio.Event = attrs.field(factory=trio.Event)

    @property
    def address(self) -> str:
        """The scheduler's or worker's address ("" until ready)."""
        return str(self.report.get("address", ""))


class SSHCluster(ClusterManager):
    """A scheduler on ``hosts[0]`` and one worker on each of ``hosts[1:]``, over ssh.

    Arguments (dask's ``SSHCluster``):
        hosts: ssh destinations (``host``, ``user@host`` or an ssh_config alias); at
            least two. Repeat a host to run more workers there.
        connect_options: how to connect (see `ssh_command`): one dict for every host,
            or a list with one per host.
        worker_options: `WorkerConfig` settings of every worker (``nthreads``,
            ``memory_limit``, ``resources``, ...).
        scheduler_options: ``port`` (0: a free one, the default),
            ``dashboard_address`` (``":8787"`` by default, None for none), ``host``
            (the address to listen on and advertise; the ssh host name by default),
            ``tls`` (True by default), ``allowed_failures``, and the scheduler's
            liveness settings (``worker_timeout``: seconds a silent worker is waited
            for before its work is recomputed elsewhere, 60 by default, ...).
        remote_python: the Python command on the hosts (``"python3"`` by default),
            one for all, a list with one per host, or a dict host -> command. It is
            run by the remote user's shell: it may set variables first (``"env
            PYTHONPATH=/opt/app /opt/venv/bin/python"``). trident must be installed
            in that Python.
        asynchronous: start with ``async with`` / ``await``.
        token: the cluster token (``"auto"``: a random one).

    Adaptive scaling (`adapt`) decides on the scheduler (`RemoteAdaptive`) and starts
    new workers on the worker hosts in turn.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        connect_options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        worker_options: Mapping[str, Any] | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        remote_python: str | Sequence[str] | Mapping[str, str] | None = None,
        *,
        asynchronous: bool = False,
        token: str | None = "auto",
    ):
        hosts = list(hosts)
        if len(hosts) < 2:
            raise ValueError("SSHCluster needs at least two hosts: the scheduler's and a worker's")
        self.hosts = hosts
        if connect_options is None or isinstance(connect_options, Mapping):
            per_host = [dict(connect_options or {})] * len(hosts)
        else:
            per_host = [dict(options) for options in connect_options]
            if len(per_host) != len(hosts):
                raise ValueError("connect_options needs one dict per host")
        for options in per_host:
            ssh_command("host", "true", options)  # refuses unknown options now
        self.connect_options = per_host
        self.worker_options = dict(worker_options or {})
        self.scheduler_options = dict(scheduler_options or {})
        self.remote_python = self._pythons(remote_python)
        self._worker_slots = list(range(1, len(hosts)))
        self._scheduler: RemoteProcess | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        token = secrets.token_urlsafe(24) if token == "auto" else token
        super().__init__(
            security=Security(token), n_workers=len(hosts) - 1, asynchronous=asynchronous
        )
        self._start()

    def _pythons(self, remote_python: Any) -> list[str]:
        if remote_python is None or isinstance(remote_python, str):
            return [remote_python or "python3"] * len(self.hosts)
        if isinstance(remote_python, Mapping):
            return [remote_python.get(host, "python3") for host in self.hosts]
        pythons = list(remote_python)
        if len(pythons) != len(self.hosts):
            raise ValueError("remote_python needs one command per host")
        return pythons

    # --- remote processes ---------------------------------------------------------------

    def _command(self, slot: int) -> list[str]:
        remote = f"{self.remote_python[slot]} -m trident.cluster.ssh_remote"
        return ssh_command(self.hosts[slot], remote, self.connect_options[slot])

    async def _start_remote(self, slot: int, name: str, spec: dict[str, Any]) -> RemoteProcess:
        """Run the remote process of `spec` on host number `slot`; return it once it
        reported ready. Raises `RuntimeError` (with what it wrote to its standard
        error) when it exits first, `trio.TooSlowError` after `START_TIMEOUT`."""
        assert self._nursery is not None
        return await self._nursery.start(self._run_remote, slot, name, spec)

    async def _run_remote(
        self, slot: int, name: str, spec: dict[str, Any], *, task_status: Any
    ) -> None:
        host = self.hosts[slot]
        process = await trio.lowlevel.open_process(
            self._command(slot),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        remote = RemoteProcess(host, name, process)
        errors: collections.deque[str] = collections.deque(maxlen=20)
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            assert self._nursery is not None
            self._nursery.start_soon(self._read_stderr, remote, errors)
            # The credential goes over the ssh channel, never on a command line.
            await process.stdin.send_all(json.dumps(spec).encode() + b"\n")
            with trio.move_on_after(START_TIMEOUT) as waiting:
                line = await _read_line(process.stdout)
            if waiting.cancelled_caught or not line:
                with trio.move_on_after(2):
                    await process.wait()
                why = "did not start in time" if waiting.cancelled_caught else "exited"
                detail = "\n".join(errors) or f"ssh exit status {process.returncode}"
                raise RuntimeError(f"{name} on {host} {why}:\n{detail}")
            remote.report = json.loads(line)
            task_status.started(remote)
            while await process.stdout.receive_some(4096):
                pass  # the remote side writes nothing more; this ends with it
            await process.wait()
            self._log.append(f"{host} {name}: exited ({process.returncode})")
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            remote.exited.set()
            if name != "scheduler":
                self._worker_left(name, remote)

    async def _read_stderr(self, remote: RemoteProcess, errors: collections.deque[str]) -> None:
        stream = remote.process.stderr
        assert stream is not None
        pending = b""
        while chunk := await stream.receive_some(4096):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                errors.append(line)
                self._log.append(f"{remote.host} {remote.name}: {line}")

    async def _stop_remote(self, remote: RemoteProcess) -> None:
        """End the remote process's input (it stops), then wait for it; kill the ssh
        client after `STOP_TIMEOUT` (the remote session ends with it)."""
        stdin = remote.process.stdin
        if stdin is not None:
            with trio.move_on_after(STOP_TIMEOUT):
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stdin.aclose()
                await remote.exited.wait()
        if not remote.exited.is_set():
            remote.process.kill()
            await remote.exited.wait()

    # --- the manager's hooks ------------------------------------------------------------

    async def _start_scheduler(self) -> str:
        options = dict(self.scheduler_options)
        options.setdefault("host", _host_name(self.hosts[0]))
        spec = {"role": "scheduler", "credential": self.security.credential, **options}
        self._scheduler = await self._start_remote(0, "scheduler", spec)
        pin = self._scheduler.report.get("tls_fingerprint")
        if pin is not None:
            self.security = attrs.evolve(self.security, tls_fingerprint=pin)
        return self._scheduler.address

    async def _start_worker(self, name: str) -> RemoteProcess:
        slot = self._worker_slots[int(name) % len(self._worker_slots)]
        spec = {
            "role": "worker",
            "credential": self.security.credential,
            "scheduler": self.scheduler_address,
            "name": name,
            "options": self.worker_options,
        }
        return await self._start_remote(slot, name, spec)

    async def _stop_worker(self, name: str, handle: RemoteProcess) -> None:
        await self._stop_remote(handle)

    async def _stop_scheduler(self) -> None:
        if self._scheduler is not None:
            await self._stop_remote(self._scheduler)

    def _manager_log(self) -> str:
        return "\n".join(list(self._log))

    def _dashboard_address(self) -> str | None:
        if self._scheduler is None:
            return None
        address = self._scheduler.report.get("dashboard_address")
        return str(address) if address else None

    def __repr__(self) -> str:
        return (
            f"SSHCluster({self.scheduler_address!r}, hosts={len(self.hosts)}, "
            f"workers={len(self.workers)}, status={self.status})"
        )


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    """Bytes up to the first newline (without it); what came before EOF otherwise."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            return line
        line += chunk
    return line[:-1]


publish(globals())
