"""The ``trident`` command: ``up``, ``scheduler``, ``worker`` and ``info``.

This module only parses arguments and hands them to `trident.deploy`. Bad arguments
print one line and exit with status 2; failures at run time (a port in use, a refused
token, an unreachable scheduler) print one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import psutil
import trio

from . import _local_credentials
from ._gc import tune_for_service
from ._scheduler_file import SchedulerFileError, read_scheduler_file
from ._version import __version__
from .cluster.local import DEFAULT_DASHBOARD_PORT, available_cpus, default_layout
from .comm.address import AddressError, format_address, parse_address
from .comm.liveness import RECONNECT_TIMEOUT
from .comm.routes import interface_address, is_loopback, is_unspecified
from .deploy.scheduler_files import default_scheduler_file
from .security import Security, split_credential, token_from_environment
from .sizes import parse_duration, parse_memory
from .worker.config import HEARTBEAT_INTERVAL, WorkerConfig

#: When this command started (its imports done), for ``trident up``'s ready line.
_STARTED = time.monotonic()

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
DEFAULT_SCHEDULER_PORT = 8786

EPILOG = """\
examples:
  trident up                                  a cluster on this machine
  trident up --workers 4 --tls-self-signed    ... encrypted, mutually authenticated
  trident info                                what the cluster started by 'up' is doing
  trident scheduler --host 0.0.0.0 --scheduler-file /shared/scheduler.json
  trident worker --scheduler-file /shared/scheduler.json

A scheduler on a non-loopback --host serves TLS with a throwaway certificate unless
--no-tls. Connect from Python with Client(scheduler_file=...), or with
Client(address, security=CREDENTIAL). The scheduler file holds the address, the cluster
token, the TLS file paths and the credential (the token with the certificate's
fingerprint) (mode 0600); it defaults to ~/.trident/scheduler.json. See docs/deploy.md.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit with status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _memory(text: str) -> str:
    if text.lower() not in ("auto", "none"):
        try:
            parse_memory(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid memory size {text!r} (try 4GB, 512MiB, auto or none)"
            ) from None
    return text


def _resources(text: str) -> dict[str, float]:
    resources = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, amount = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            resources[name.strip()] = float(amount)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid resources {text!r} (expected NAME=AMOUNT,..., e.g. GPU=1,MEM=10e9)"
            ) from None
    return resources


def _positive(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r} (try 0.5, 500ms or 2s)"
        ) from None


def _ssh_option(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _port(text: str) -> int:
    value = _positive(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range")
    return value


def _address(text: str) -> str:
    try:
        parse_address(text)
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _dashboard_host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    try:
        _port(port)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid dashboard address {text!r} (expected HOST:PORT, :PORT or PORT)"
        ) from None
    return f"{host}:{port}"


@contextlib.contextmanager
def _pid_file(path: Path | None) -> Iterator[None]:
    """Write this process's id to `path` (if given) while the command runs."""
    if path is None:
        yield
        return
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- options shared between commands --------------------------------------------------


def _add_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v for info, -vv for debug (to stderr)",
    )


def _add_dashboard(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--dashboard-port",
        metavar="P",
        type=_port,
        default=DEFAULT_DASHBOARD_PORT,
        help=f"HTTP dashboard and /metrics port on --host, 0 for a free one (default: "
        f"{DEFAULT_DASHBOARD_PORT}; a taken port falls back to a free one)",
    )
    group.add_argument(
        "--dashboard-address",
        metavar="HOST:PORT",
        type=_dashboard_host_port,
        help="where to serve the dashboard, e.g. 0.0.0.0:8787 or :8787 (on --host)",
    )
    group.add_argument("--no-dashboard", action="store_true", help="serve no dashboard")


def _dashboard_address(args: argparse.Namespace) -> str | None:
    if args.no_dashboard:
        return None
    if args.dashboard_address is not None:
        host, _, port = args.dashboard_address.rpartition(":")
        return f"{host or args.host}:{port}"
    return f"{args.host}:{args.dashboard_port}"


def _add_process(parser: argparse.ArgumentParser, *, preload_help: str) -> None:
    """Options of every long-lived command: preload modules and a pid file."""
    parser.add_argument(
        "--preload",
        metavar="MODULE",
        action="append",
        default=[],
        help=f"{preload_help}: a module name or a .py file, imported at start; its "
        "dask_setup(server) or trident_setup(server) is called (repeatable)",
    )
    parser.add_argument(
        "--pid-file", metavar="FILE", type=Path, help="write the process id to FILE while running"
    )


def _add_network(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument(
        "--interface",
        metavar="NAME",
        help=f"listen on the address of this network interface, e.g. eth0 ({what})",
    )
    parser.add_argument(
        "--protocol",
        choices=("tcp", "tls"),
        help="tcp or tls (default: tls with TLS certificates, else tcp)",
    )


def _add_worker_settings(parser: argparse.ArgumentParser, *, each: str) -> None:
    """Options that set a `WorkerConfig` (dask worker's names)."""
    parser.add_argument(
        "--nthreads",
        "--threads",
        dest="nthreads",
        metavar="T",
        type=_positive(1),
        help=f"threads {each} (default: from the CPU count)",
    )
    parser.add_argument(
        "--memory-limit",
        metavar="SIZE",
        type=_memory,
        default="auto",
        help=f"{each}, e.g. 4GB; 'auto' shares the machine's memory (default), 'none'",
    )
    parser.add_argument(
        "--resources",
        metavar="SPEC",
        type=_resources,
        default={},
        help=f'abstract resources {each}, e.g. "GPU=1,MEM=10e9"',
    )
    parser.add_argument(
        "--local-directory",
        metavar="DIR",
        help="where workers keep their files (spilled results; default: the system's "
        "temporary directory)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        metavar="SECONDS",
        type=_duration,
        default=HEARTBEAT_INTERVAL,
        help=f"seconds between heartbeats to the scheduler (default: {HEARTBEAT_INTERVAL:g})",
    )


def _add_listening(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    """Where a scheduler listens, and where it writes the scheduler file."""
    parser.add_argument(
        "--host",
        metavar="HOST",
        default="127.0.0.1",
        help="interface to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--port",
        metavar="P",
        type=_port,
        default=default_port,
        help=f"scheduler port; 0 picks a free one (default: {default_port})",
    )
    parser.add_argument(
        "--scheduler-file",
        type=Path,
        metavar="FILE",
        help="where to write the address and credentials (default: ~/.trident/scheduler.json)",
    )


def _add_server_security(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("security (a random cluster token by default)")
    auth = group.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        metavar="T",
        help="the cluster token peers must prove they know "
        "(default: $TRIDENT_TOKEN, else a random one written to the scheduler file)",
    )
    auth.add_argument(
        "--no-auth",
        action="store_true",
        help="accept anyone who can connect (anyone can then run code as you; "
        "a warning is printed when not bound to loopback)",
    )
    group.add_argument("--tls-ca", metavar="FILE", help="CA certificate (PEM) of the cluster")
    group.add_argument("--tls-cert", metavar="FILE", help="this process's certificate (PEM)")
    group.add_argument("--tls-key", metavar="FILE", help="this process's private key (PEM)")
    tls = group.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="create a throwaway CA and certificate in a private temporary directory "
        "(removed on exit): encrypted, mutually authenticated connections in one flag",
    )
    tls.add_argument(
        "--no-tls",
        action="store_true",
        help="plain TCP even on a non-loopback --host (a trusted network only: the token "
        "still authenticates the ends, but anyone on the path can read and alter the "
        "bytes). Without it, a non-loopback --host gets TLS with a throwaway "
        "certificate whose fingerprint the scheduler file's credential carries",
    )
    group.add_argument(
        "--print-credentials",
        action="store_true",
        help="print the command (with the secret credential) that starts a worker on "
        "another machine",
    )


def _add_client_security(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "security (defaults: $TRIDENT_TOKEN, then what the scheduler file holds)"
    )
    group.add_argument(
        "--token",
        metavar="T",
        help="the cluster token, or its credential TOKEN#tls-sha256=HEX (the token and the "
        "scheduler's TLS certificate fingerprint)",
    )
    group.add_argument("--tls-ca", metavar="FILE", help="CA certificate (PEM) of the cluster")
    group.add_argument("--tls-cert", metavar="FILE", help="this process's certificate (PEM)")
    group.add_argument("--tls-key", metavar="FILE", help="this process's private key (PEM)")


def _add_scheduler_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "address",
        nargs="?",
        metavar="ADDRESS",
        type=_address,
        help="the scheduler, e.g. tcp://10.0.0.1:8786 (default: read the scheduler file)",
    )
    parser.add_argument(
        "--scheduler-file",
        type=Path,
        metavar="FILE",
        help="read the address and credentials from this file "
        "(default: ~/.trident/scheduler.json when no ADDRESS is given)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``trident`` argument parser with its four commands."""
    parser = _Parser(
        prog="trident",
        description="Start and inspect trident clusters.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trident {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="a scheduler and workers on this machine, in the foreground",
        description="Start a scheduler and workers (each under a nanny that restarts it "
        "if it dies) on this machine, print how to connect, and run until Ctrl-C or "
        "SIGTERM, which stop every process.",
    )
    up.add_argument(
        "--workers",
        "--nworkers",  # dask worker's name for it
        "--n-workers",  # LocalCluster(n_workers=)
        dest="workers",
        metavar="N",
        type=_positive(0),
        help="worker processes (default: from the CPU count)",
    )
    up.add_argument(
        "--ssh",
        metavar="HOST1,HOST2,...",
        type=lambda text: [host for host in text.split(",") if host],
        help="run the scheduler on HOST1 and a worker on each further host, over ssh "
        "(keys or an agent: no password prompts); --port and the dashboard options "
        "apply on HOST1; --workers spreads that many over the worker hosts",
    )
    up.add_argument(
        "--ssh-key", metavar="FILE", action="append", help="private key for --ssh (repeatable)"
    )
    up.add_argument(
        "--ssh-option",
        metavar="KEY=VALUE",
        action="append",
        type=_ssh_option,
        help="an ssh -o option for --ssh, e.g. UserKnownHostsFile=FILE (repeatable)",
    )
    up.add_argument(
        "--remote-python",
        metavar="COMMAND",
        default="python3",
        help="Python (with trident) on the --ssh hosts (default: python3)",
    )
    _add_worker_settings(up, each="per worker")
    _add_listening(up, default_port=0)
    _add_network(up, what="the scheduler and workers; instead of --host")
    _add_dashboard(up)
    _add_process(up, preload_help="run in each worker process")
    _add_server_security(up)
    _add_logging(up)
    up.set_defaults(handler=_up, parser=up)

    scheduler = commands.add_parser(
        "scheduler",
        help="a scheduler alone, for workers on several machines",
        description="Run a scheduler in the foreground until Ctrl-C or SIGTERM. Workers "
        "join with 'trident worker'.",
    )
    _add_listening(scheduler, default_port=DEFAULT_SCHEDULER_PORT)
    _add_network(scheduler, what="instead of --host")
    _add_dashboard(scheduler)
    _add_process(scheduler, preload_help="run in the scheduler process")
    _add_server_security(scheduler)
    _add_logging(scheduler)
    scheduler.set_defaults(handler=_scheduler, parser=scheduler)

    worker = commands.add_parser(
        "worker",
        help="a worker that joins a scheduler",
        description="Run a worker for the scheduler at ADDRESS (or the one in the "
        "scheduler file) until Ctrl-C, SIGTERM or the scheduler stays out of reach for "
        "--reconnect-timeout seconds.",
    )
    _add_scheduler_target(worker)
    worker.add_argument(
        "--name", metavar="NAME", help="a name for logs and workers= (default: its address)"
    )
    _add_worker_settings(worker, each="of the worker")
    worker.add_argument(
        "--nanny",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the worker in a process under a nanny that restarts it if it dies "
        "and reports why (default: --nanny)",
    )
    worker.add_argument(
        "--listen-address",
        metavar="ADDRESS",
        type=_address,
        help="where to listen for peers, e.g. tcp://0.0.0.0:9000 (default: a free port "
        "on the interface that routes to the scheduler)",
    )
    worker.add_argument(
        "--contact-address",
        metavar="ADDRESS",
        type=_address,
        help="the address peers should use, when it differs from the listen address "
        "(NAT, port forwarding), e.g. tcp://203.0.113.5:9000",
    )
    worker.add_argument(
        "--reconnect-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=RECONNECT_TIMEOUT,
        help="how long the worker (and its nanny) keep trying to reach a lost scheduler "
        f"before they exit (default: {RECONNECT_TIMEOUT:g})",
    )
    worker.add_argument(
        "--lifetime",
        metavar="DURATION",
        type=_duration,
        help="after this long (e.g. 55m), ask the scheduler to retire the worker: its "
        "data moves to other workers, then it stops (for batch jobs: under the walltime)",
    )
    worker.add_argument(
        "--lifetime-stagger",
        metavar="DURATION",
        type=_duration,
        default=0.0,
        help="move the lifetime by a random amount up to this, either way (default: 0)",
    )
    _add_network(worker, what="with a free port; instead of --listen-address")
    _add_process(worker, preload_help="run in the worker process")
    _add_client_security(worker)
    _add_logging(worker)
    worker.set_defaults(handler=_worker, parser=worker)

    info = commands.add_parser(
        "info",
        help="print a cluster's workers, threads, memory and tasks",
        description="Connect to a scheduler and print its workers, threads, memory, "
        "tasks and recent worker deaths.",
    )
    _add_scheduler_target(info)
    info.add_argument("--json", action="store_true", help="print scheduler_info() as JSON")
    info.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="seconds to wait for the scheduler",
    )
    _add_client_security(info)
    _add_logging(info)
    info.set_defaults(handler=_info, parser=info)
    return parser


# --- turning arguments into settings -------------------------------------------------------


def _log_level(verbose: int) -> str:
    return ("WARNING", "INFO", "DEBUG")[min(verbose, 2)]


def _configure_logging(verbose: int) -> None:
    """Print records at the chosen level; trident's INFO records are kept regardless.

    The scheduler's log buffer (``Client.get_scheduler_logs``) sees what the ``trident``
    logger lets through, so that logger passes INFO even when the console shows only
    warnings.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(_log_level(verbose))
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(_log_level(verbose))
    logging.getLogger("trident").setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)


@contextlib.contextmanager
def _server_security(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> Iterator[tuple[Security, bool]]:
    """The security of ``up``/``scheduler`` and whether the user chose the token.

    Creates (and finally removes) the throwaway certificates of ``--tls-self-signed``,
    and of the TLS a non-loopback ``--host`` gets unless ``--no-tls`` (that one needs no
    client certificates: the token authenticates peers, and the certificate's
    fingerprint travels with the token in the scheduler file's credential).
    """
    files = (args.tls_ca, args.tls_cert, args.tls_key)
    if (args.tls_self_signed or args.no_tls) and any(files):
        flag = "--tls-self-signed" if args.tls_self_signed else "--no-tls"
        parser.error(f"{flag} cannot be combined with --tls-ca/--tls-cert/--tls-key")
    if any(files) and not all(files):
        parser.error("TLS needs --tls-ca, --tls-cert and --tls-key together")
    if args.no_auth:
        token, token_known = None, True
    elif args.token is not None:
        token, token_known = split_credential(args.token)[0], True
    elif (from_env := token_from_environment()) is not None:
        token, token_known = split_credential(from_env)[0], True
    else:
        token, token_known = secrets.token_urlsafe(32), False
    remote = not is_loopback(args.host)
    default_tls = (
        (remote or args.protocol == "tls")
        and not args.no_tls
        and not any(files)
        and not args.tls_self_signed
    )
    if args.no_auth and remote and not any(files) and not args.tls_self_signed:
        print(
            f"{parser.prog}: warning: listening on {args.host} without authentication: anyone "
            "who can reach this port can run code as this user",
            file=sys.stderr,
        )
    if args.tls_self_signed or default_tls:
        with tempfile.TemporaryDirectory(prefix="trident-tls-") as directory:
            hosts = () if is_unspecified(args.host) else (args.host,)
            security = Security.self_signed(
                directory, token=token, hosts=hosts, require_client_cert=args.tls_self_signed
            )
            yield security, token_known
        return
    if all(files):
        yield (
            Security(token, tls_ca_file=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key),
            token_known,
        )
        return
    yield Security(token), token_known


def _server_network(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Apply ``--interface`` (it sets the host) and ``--protocol`` of ``up``/``scheduler``.

    ``--protocol tls`` without TLS files gets a throwaway certificate (as a non-loopback
    host does); ``--protocol tcp`` is ``--no-tls``.
    """
    if args.interface is not None:
        try:
            args.host = interface_address(args.interface)
        except ValueError as exc:
            parser.error(str(exc))
    if args.protocol == "tcp":
        if args.tls_self_signed or any((args.tls_ca, args.tls_cert, args.tls_key)):
            parser.error("--protocol tcp cannot be combined with TLS options")
        args.no_tls = True
    elif args.protocol == "tls" and args.no_tls:
        parser.error("--protocol tls cannot be combined with --no-tls")


def _worker_config(args: argparse.Namespace, **settings: Any) -> WorkerConfig:
    """The `WorkerConfig` of ``up``/``worker`` from their shared options."""
    return WorkerConfig(
        resources=args.resources,
        local_directory=args.local_directory,
        heartbeat_interval=args.heartbeat_interval,
        preload=args.preload,
        log_level=_log_level(args.verbose),
        **settings,
    )


def _target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, Security]:
    """The scheduler address and credentials of ``worker``/``info``."""
    address = args.address
    from_file = Security()
    path = args.scheduler_file
    if path is None and address is None:
        path = default_scheduler_file()
        if not path.exists():
            parser.error(f"give the scheduler's ADDRESS or --scheduler-file ({path} is missing)")
    if path is not None:
        try:
            file_address, from_file = read_scheduler_file(path)
        except SchedulerFileError as exc:
            parser.error(str(exc))
        address = address or file_address
    security = from_file
    if any((args.tls_ca, args.tls_cert, args.tls_key)):
        if not args.tls_ca or (args.tls_cert is None) != (args.tls_key is None):
            parser.error("TLS needs --tls-ca, and --tls-cert with --tls-key")
        security = Security(tls_ca_file=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)
    security = security.with_credential(args.token or token_from_environment() or from_file.token)
    security = _local_credentials.complete(address, security)
    if address.startswith("tls://") and not security.tls:
        parser.error(f"{address} uses TLS: give --tls-ca (and --tls-cert, --tls-key)")
    return address, security


def _memory_limit(text: str, share: int) -> int:
    if text.lower() == "none":
        return 0
    if text.lower() == "auto":
        return int(psutil.virtual_memory().total // max(1, share))
    return parse_memory(text)


# --- commands ----------------------------------------------------------------------------


def _up(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .deploy.up import SupervisedCluster, run_up

    if args.ssh is not None:
        _up_ssh(parser, args)
        return
    default_workers, default_threads = default_layout(available_cpus(), processes=True)
    workers = default_workers if args.workers is None else args.workers
    _server_network(parser, args)
    config = _worker_config(
        args,
        nthreads=args.nthreads or default_threads,
        memory_limit=_memory_limit(args.memory_limit, workers),
    )
    with _server_security(parser, args) as (security, token_known):
        cluster = SupervisedCluster(
            n_workers=workers,
            worker_config=config,
            host=args.host,
            port=args.port,
            security=security,
            dashboard_address=_dashboard_address(args),
        )
        _serve(
            run_up,
            cluster,
            scheduler_file=args.scheduler_file,
            token_known=token_known,
            out=sys.stdout,
            began=_STARTED,
            print_credentials=args.print_credentials,
        )


def _up_ssh(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``trident up --ssh``: an `SSHCluster` in the foreground until SIGINT or SIGTERM."""
    from .cluster.ssh import SSHCluster

    if len(args.ssh) < 2:
        parser.error("--ssh needs at least two hosts: the scheduler's, then the workers'")
    if args.tls_self_signed or any((args.tls_ca, args.tls_cert, args.tls_key)):
        parser.error("--ssh makes its own throwaway certificate on the scheduler's host")
    worker_options: dict[str, Any] = {
        "nthreads": args.nthreads or 1,
        "resources": args.resources,
        "heartbeat_interval": args.heartbeat_interval,
        "preload": list(args.preload or ()),
        "log_level": _log_level(args.verbose),
    }
    if args.memory_limit.lower() != "auto":
        worker_options["memory_limit"] = _memory_limit(args.memory_limit, 1)
    if args.local_directory is not None:
        worker_options["local_directory"] = args.local_directory
    if args.no_dashboard:
        dashboard = None
    elif args.dashboard_address is not None:
        dashboard = args.dashboard_address  # ":port" is on the scheduler's host
    else:
        dashboard = f":{args.dashboard_port}"
    token = None if args.no_auth else args.token or token_from_environment() or "auto"
    cluster = SSHCluster(
        args.ssh,
        connect_options={
            "client_keys": args.ssh_key or [],
            "options": dict(args.ssh_option or []),
        },
        worker_options=worker_options,
        scheduler_options={
            "port": args.port,
            "dashboard_address": dashboard,
            "tls": not args.no_tls,
        },
        remote_python=args.remote_python,
        asynchronous=True,
        token=None if token is None else split_credential(token)[0],
    )
    _serve(
        _run_ssh_up,
        cluster,
        scheduler_file=args.scheduler_file,
        workers=args.workers,
        token_known=token != "auto",
    )


async def _run_ssh_up(
    cluster: Any, *, scheduler_file: Path | None, workers: int | None, token_known: bool
) -> None:
    from ._dashboard_url import dashboard_url
    from .deploy.banner import connect_lines
    from .deploy.lifecycle import cancel_on_signals
    from .deploy.scheduler_files import published

    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        async with cluster:
            if workers is not None:
                await cluster.scale(workers)
            address, security = cluster.scheduler_address, cluster.security
            with (
                _local_credentials.recorded([address], security),
                published(scheduler_file, address, security) as path,
            ):
                # A link that logs in to the dashboard only: the token itself stays unprinted.
                served = cluster._dashboard_address()
                dashboard = served and dashboard_url(
                    served, address, security.token, login_only=True
                )
                lines = [
                    f"trident up: {len(cluster.workers)} workers on {len(cluster.hosts) - 1} "
                    f"hosts over ssh, scheduler on {cluster.hosts[0]}",
                    *connect_lines(
                        address,
                        path,
                        security,
                        token_known=token_known,
                        dashboard=[f"  dashboard       {dashboard}"] if dashboard else [],
                    ),
                    "press Ctrl-C to stop (every remote process stops with it)",
                ]
                print("\n".join(lines), flush=True)
                await trio.sleep_forever()
    print("trident up stopped", flush=True)


def _scheduler(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .deploy.standalone import run_scheduler

    _server_network(parser, args)
    with _server_security(parser, args) as (security, token_known):
        scheme = "tls" if security.tls else "tcp"
        _serve(
            run_scheduler,
            format_address(scheme, args.host, args.port),
            security=security,
            dashboard_address=_dashboard_address(args),
            preload=args.preload,
            scheduler_file=args.scheduler_file,
            token_known=token_known,
            out=sys.stdout,
            print_credentials=args.print_credentials,
        )


def _worker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .deploy.standalone import run_worker

    address, security = _target(parser, args)
    listen_address = args.listen_address
    if args.interface is not None or args.protocol is not None:
        if listen_address is not None:
            parser.error("--listen-address cannot be combined with --interface or --protocol")
        if args.interface is None:
            parser.error("--protocol needs --interface (or give --listen-address)")
        try:
            host = interface_address(args.interface)
        except ValueError as exc:
            parser.error(str(exc))
        scheme = args.protocol or ("tls" if security.tls else "tcp")
        listen_address = format_address(scheme, host, 0)
    config = _worker_config(
        args,
        nthreads=args.nthreads or available_cpus(),
        name=args.name,
        memory_limit=_memory_limit(args.memory_limit, 1),
        listen_address=listen_address,
        contact_address=args.contact_address,
        reconnect_timeout=args.reconnect_timeout,
        lifetime=args.lifetime,
        lifetime_stagger=args.lifetime_stagger,
    )
    _serve(run_worker, address, config=config, security=security, nanny=args.nanny, out=sys.stdout)


def _info(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .deploy.info import fetch_info, format_info

    address, security = _target(parser, args)
    info = trio.run(fetch_info, address, security, args.timeout)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_info(address, info))


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(error: BaseException) -> str:
    """One line for an error; trio's connect errors keep the reason in their cause."""
    text = str(error) or type(error).__name__
    if error.__cause__ is not None:
        reasons = dict.fromkeys(
            leaf.strerror for leaf in _leaves(error.__cause__) if isinstance(leaf, OSError)
        )
        if reasons and None not in reasons:
            text += f" ({', '.join(str(reason) for reason in reasons)})"
    return text


def _command_line_hint(message: str) -> str:
    """Errors meant for Python callers, reworded for the command line."""
    return message.replace("pass security=/token", "pass --token")


def _serve(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a long-lived command's trio program (this process now only runs trident)."""
    tune_for_service()
    return trio.run(partial(function, *args, **kwargs))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``trident`` command; exits with its status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would blame "trident"; name the command instead
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _configure_logging(args.verbose)
    try:
        with _pid_file(getattr(args, "pid_file", None)):
            args.handler(args.parser, args)
        sys.stdout.flush()  # a closed pipe raises here, not at interpreter exit
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:
        # The reader left (``trident info | head``): end quietly, as cat does; stdout
        # goes to /dev/null so the interpreter's final flush cannot complain either.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(1) from None
    except Exception as exc:
        messages = dict.fromkeys(_command_line_hint(_describe(leaf)) for leaf in _leaves(exc))
        for message in messages:
            print(f"trident {args.command}: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
