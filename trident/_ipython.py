"""IPython kernels inside workers and the scheduler (`Client.start_ipython_workers`,
`Client.start_ipython_scheduler`), and the client-side ``%magics`` that talk to them.

A kernel runs in a thread of the process it inspects, with the worker (``worker``) or
the scheduler (``scheduler``) in its namespace; connect with ``jupyter console
--existing``, a qtconsole, or the magics. It belongs to its actor and stops with it.
While it runs, the process's ``sys.stdout`` and ``sys.stderr`` are the kernel's (what
that process prints appears in the connected consoles). Anyone holding the connection
info (its HMAC key travels to the client over the cluster's authenticated connection)
can run code there, as with dask. One kernel per process.

Needs ipykernel (``pip install 'trident[ipython]'``); without it these raise an
`ImportError` that says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from typing import Any

import trio

#: How to get what these features need.
EXTRA = "pip install 'trident[ipython]'"
START_TIMEOUT = 30.0

_process_kernel_lock = threading.Lock()
_process_kernel: EmbeddedKernel | None = None


def require_ipykernel() -> None:
    """Raise `ImportError` naming the extra when ipykernel cannot be imported."""
    try:
        import ipykernel.kernelapp  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"IPython kernels need ipykernel: {EXTRA}") from exc


class EmbeddedKernel:
    """An IPython kernel running in a thread of this process, owned by one actor."""

    def __init__(self) -> None:
        self.info: dict[str, Any] | None = None
        self._app: Any = None
        self._loop: Any = None
        self._thread: threading.Thread | None = None

    async def start(self, namespace: dict[str, Any], ip: str) -> dict[str, Any]:
        """Start the kernel (once) and return its connection info; a checkpoint.

        Raises `ImportError` without ipykernel and `RuntimeError` when this process
        runs another IPython kernel or shell.
        """
        global _process_kernel
        if self.info is not None:
            return self.info
        require_ipykernel()
        from ipykernel.kernelapp import IPKernelApp
        from IPython import get_ipython

        with _process_kernel_lock:
            if _process_kernel is not None or get_ipython() is not None:
                raise RuntimeError("this process runs an IPython kernel or shell already")
            _process_kernel = self
        try:
            app: Any = IPKernelApp.instance()
            self._app = app
            app.config.HistoryManager.hist_file = ":memory:"
            app.ip = ip
            app.capture_fd_output = False  # never take the process's file descriptors over
            app.init_signal = _nothing  # signals belong to the main thread
            app.log_connection_info = _nothing
            started = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._main,
                args=(namespace, started, failure),
                name="trident-ipython-kernel",
                daemon=True,
            )
            self._thread.start()
            with trio.fail_after(START_TIMEOUT):
                await trio.to_thread.run_sync(started.wait, abandon_on_cancel=True)
            if failure:
                raise RuntimeError(f"the IPython kernel failed to start: {failure[0]!r}")
        except BaseException:
            self.stop()
            raise
        info = dict(app.get_connection_info())
        key = info.get("key", b"")
        info["key"] = key.decode() if isinstance(key, bytes) else key
        self.info = info
        return info

    def _main(
        self, namespace: dict[str, Any], started: threading.Event, failure: list[BaseException]
    ) -> None:
        from tornado.ioloop import IOLoop

        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            app = self._app
            app.initialize([])
            app.kernel.pre_handler_hook = _nothing
            app.kernel.post_handler_hook = _nothing
            app.kernel.start()
            app.kernel.shell.user_ns.update(namespace)
            loop = self._loop = IOLoop.current()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.start()
        loop.close(all_fds=False)

    def stop(self) -> None:
        """Stop the kernel and its threads (waits briefly); safe to call twice."""
        global _process_kernel
        loop, thread, app = self._loop, self._thread, self._app
        self._loop = self._thread = self._app = None
        self.info = None
        if loop is not None:
            loop.add_callback(loop.stop)
        if thread is not None:
            thread.join(5)
        if app is not None:
            from ipykernel.kernelapp import IPKernelApp

            app.close()
            shell = getattr(app, "shell", None)
            if shell is not None:
                type(shell).clear_instance()
            IPKernelApp.clear_instance()
        with _process_kernel_lock:
            if _process_kernel is self:
                _process_kernel = None


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


# --- functions run on workers and the scheduler (through Client.run*) ---------------------


def _host_of(address: str) -> str:
    from .comm.address import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme == "inproc":
        return "127.0.0.1"
    return parse_host_port(location)[0]


async def start_worker_kernel(trident_worker: Any) -> dict[str, Any]:
    """Start the kernel of the worker this runs on (``worker`` in its namespace)."""
    return await trident_worker.ipython.start(
        {"worker": trident_worker}, _host_of(trident_worker.address)
    )


async def start_scheduler_kernel(trident_scheduler: Any) -> dict[str, Any]:
    """Start the kernel of the scheduler this runs on (``scheduler`` in its namespace)."""
    return await trident_scheduler.ipython.start(
        {"scheduler": trident_scheduler}, _host_of(trident_scheduler.address)
    )


# --- in the client: magics and consoles -----------------------------------------------------


def register_remote_magic(connection_info: dict[str, Any], magic_name: str) -> None:
    """Register ``%magic_name`` / ``%%magic_name`` in the running IPython to run code in
    the kernel of `connection_info` and show its output. Needs IPython and
    jupyter_client in this process."""
    from IPython import get_ipython
    from jupyter_client import BlockingKernelClient

    shell = get_ipython()
    if shell is None:
        raise RuntimeError(f"%{magic_name} needs an IPython session to live in")
    client: Any = BlockingKernelClient()
    client.load_connection_info(connection_info)
    client.start_channels(hb=False)  # no heartbeat thread: the magic only sends requests

    def remote(line: str, cell: str | None = None) -> None:
        run_remote_code(client, cell if cell is not None else line)

    shell.register_magic_function(remote, magic_kind="line_cell", magic_name=magic_name)


def run_remote_code(client: Any, code: str, timeout: float = 60.0) -> None:
    """Run `code` in the kernel `client` talks to; print its output and results here."""
    msg_id = client.execute(code)
    while True:
        message = client.get_iopub_msg(timeout=timeout)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        content = message["content"]
        if kind == "stream":
            stream = sys.stderr if content["name"] == "stderr" else sys.stdout
            stream.write(content["text"])
        elif kind in ("execute_result", "display_data"):
            print(content["data"].get("text/plain", ""))
        elif kind == "error":
            print("\n".join(content["traceback"]), file=sys.stderr)
        elif kind == "status" and content["execution_state"] == "idle":
            return


def open_qtconsole(connection_info: dict[str, Any], name: str, extra_args: list[str]) -> Any:
    """Start a Jupyter qtconsole on the kernel of `connection_info`; return the process.

    The console is a window of its own: it runs until the user closes it. Raises
    `ImportError` when qtconsole is not installed.
    """
    try:
        import qtconsole  # noqa: F401
    except ImportError as exc:
        raise ImportError("a qtconsole needs qtconsole: pip install qtconsole") from exc
    path = os.path.join(tempfile.mkdtemp(prefix="trident-kernel-"), f"{name}.json")
    with open(path, "w") as file:
        json.dump(connection_info, file)
    command = [sys.executable, "-m", "qtconsole", "--existing", path, *extra_args]
    return subprocess.Popen(command)
