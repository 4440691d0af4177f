"""`KernelMethods`: the `Client` methods that start IPython kernels in workers and the
scheduler (see `trident._ipython`)."""

from __future__ import annotations

from typing import Any

from .._ipython import (
    open_qtconsole,
    register_remote_magic,
    start_scheduler_kernel,
    start_worker_kernel,
)
from .admin import ClusterAdministration


def in_ipython() -> bool:
    """Whether this code runs inside an IPython shell or kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def magic_names_for(magic_names: Any, workers: list[str]) -> list[str]:
    """dask's rules: a name, names, or a pattern with ``*`` numbered per worker."""
    if not magic_names:
        return []
    if isinstance(magic_names, str):
        if "*" in magic_names:
            return [magic_names.replace("*", str(i)) for i in range(len(workers))]
        return [magic_names]
    return list(magic_names)


class KernelMethods(ClusterAdministration):
    """Mixed into `Client`: IPython kernels in the cluster's processes."""

    def start_ipython_workers(
        self,
        workers: Any = None,
        magic_names: Any = False,
        qtconsole: bool = False,
        qtconsole_args: list[str] | None = None,
    ) -> Any:
        """Start an IPython kernel in each worker (or in `workers`); return ``{address:
        connection info}`` for ``jupyter console --existing`` and friends.

        In each kernel ``worker`` is the `Worker`. `magic_names` registers ``%name``
        magics here that run code in those kernels (a name, a list of names, or a
        pattern such as ``"worker_*"`` numbered per worker; needs an IPython session).
        `qtconsole` opens a qtconsole on each. Raises `ImportError` naming
        ``trident[ipython]`` when ipykernel is missing where a kernel should start.
        A coroutine for asynchronous clients.
        """
        if self.asynchronous:
            options = (magic_names, qtconsole, qtconsole_args)
            return self._start_ipython_workers_async(workers, *options)
        info = self.run(start_worker_kernel, workers=workers)
        self._attach(info, magic_names_for(magic_names, list(info)), qtconsole, qtconsole_args)
        return info

    async def _start_ipython_workers_async(
        self, workers: Any, magic_names: Any, qtconsole: bool, qtconsole_args: list[str] | None
    ) -> dict[str, Any]:
        info = await self.run(start_worker_kernel, workers=workers)
        self._attach(info, magic_names_for(magic_names, list(info)), qtconsole, qtconsole_args)
        return info

    def start_ipython_scheduler(
        self,
        magic_name: str = "scheduler_if_ipython",
        qtconsole: bool = False,
        qtconsole_args: list[str] | None = None,
    ) -> Any:
        """Start an IPython kernel in the scheduler's process; return its connection
        info. In the kernel ``scheduler`` is the `Scheduler`.

        `magic_name` registers a ``%name`` magic here that runs code there; the default
        registers ``%scheduler`` when this runs in IPython, and nothing otherwise.
        `qtconsole` opens a qtconsole on it. Raises `ImportError` naming
        ``trident[ipython]`` without ipykernel, and `RuntimeError` when the scheduler's
        process runs an IPython kernel already (a local cluster started in a notebook).
        A coroutine for asynchronous clients.
        """
        if self.asynchronous:
            return self._start_ipython_scheduler_async(magic_name, qtconsole, qtconsole_args)
        info = self.run_on_scheduler(start_scheduler_kernel)
        self._attach_scheduler(info, magic_name, qtconsole, qtconsole_args)
        return info

    async def _start_ipython_scheduler_async(
        self, magic_name: str, qtconsole: bool, qtconsole_args: list[str] | None
    ) -> dict[str, Any]:
        info = await self.run_on_scheduler(start_scheduler_kernel)
        self._attach_scheduler(info, magic_name, qtconsole, qtconsole_args)
        return info

    def _attach_scheduler(
        self,
        info: dict[str, Any],
        magic_name: str,
        qtconsole: bool,
        qtconsole_args: list[str] | None,
    ) -> None:
        if magic_name == "scheduler_if_ipython":
            magic_name = "scheduler" if in_ipython() else ""
        names = [magic_name] if magic_name else []
        self._attach({"scheduler": info}, names, qtconsole, qtconsole_args)

    @staticmethod
    def _attach(
        info: dict[str, Any],
        magic_names: list[str],
        qtconsole: bool,
        qtconsole_args: list[str] | None,
    ) -> None:
        for connection, name in zip(info.values(), magic_names, strict=False):
            register_remote_magic(connection, name)
        if qtconsole:
            for where, connection in info.items():
                name = where.replace("://", "-").replace(":", "-").replace("/", "-")
                open_qtconsole(connection, name, list(qtconsole_args or ()))
