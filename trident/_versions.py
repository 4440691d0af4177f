"""The versions of Python, trident and the packages it relies on, in this process.

`Client.get_versions` collects them from the client, the scheduler and every worker;
a mismatch between processes is the usual cause of errors when loading pickled data.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

#: Packages whose versions must agree between the processes of a cluster.
REQUIRED_PACKAGES = ("trident", "cloudpickle", "msgpack", "trio", "anyio", "attrs", "tblib")
#: Packages reported when installed; a mismatch matters when tasks use them.
OPTIONAL_PACKAGES = ("numpy", "pandas", "dask", "ipykernel")


@functools.cache
def _host() -> dict[str, Any]:
    import platform  # here: worker processes load this module, few ask for versions

    uname = platform.uname()
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "python-bits": 64 if sys.maxsize > 2**32 else 32,
        "OS": uname.system,
        "OS-release": uname.release,
        "machine": uname.machine,
        "processor": uname.processor,
        "byteorder": sys.byteorder,
    }


@functools.cache
def package_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None if it is not installed
    (nor can be: an empty name)."""
    if name == "python":
        return ".".join(map(str, sys.version_info[:3]))
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def local_versions(packages: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """``{"host": {...}, "packages": {name: version or None}}`` of this process.

    Reports Python, the required and optional packages, and any extra `packages`.
    """
    names = ("python", *REQUIRED_PACKAGES, *OPTIONAL_PACKAGES, *packages)
    return {
        "host": dict(_host()),
        "packages": {name: package_version(name) for name in dict.fromkeys(names)},
    }


def version_mismatches(versions: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """The packages whose versions differ between processes: ``{package: {process:
    version}}``.

    `versions` has the shape `Client.get_versions` returns (``"client"``,
    ``"scheduler"`` and ``"workers"`` by address). A package missing from a process
    that does not use it is no mismatch for optional packages; required ones (and
    Python) must be present and equal everywhere.
    """
    processes: dict[str, dict[str, str | None]] = {
        "client": versions["client"]["packages"],
        "scheduler": versions["scheduler"]["packages"],
    }
    for address, info in versions["workers"].items():
        processes[address] = info["packages"]
    names: dict[str, None] = {}
    for packages in processes.values():
        names.update(dict.fromkeys(packages))
    mismatches = {}
    for name in names:
        found = {process: packages.get(name) for process, packages in processes.items()}
        compared = set(found.values())
        if name not in ("python", *REQUIRED_PACKAGES):
            compared.discard(None)
        if len(compared) > 1:
            mismatches[name] = found
    return mismatches


def describe_mismatches(mismatches: dict[str, dict[str, str | None]]) -> str:
    """A readable table of `version_mismatches`."""
    lines = []
    for name, found in sorted(mismatches.items()):
        lines.append(f"{name}:")
        lines.extend(f"  {process:<40} {version}" for process, version in found.items())
    return "\n".join(lines)
