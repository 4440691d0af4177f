"""The scheduler file: how to reach and authenticate with a scheduler, as private JSON.

``{"address": ..., "token": ..., "tls": {...}, "credential": ...}`` (the credential,
the token with the TLS certificate's fingerprint, only when there is a pin), written
with mode 0600 by `Client.write_scheduler_file`, ``trident up`` and ``trident
scheduler``, and read by ``Client(scheduler_file=...)``, ``trident worker
--scheduler-file`` and ``trident info``.
On a shared filesystem it is how workers and clients on other machines find the cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .security import Security

_FILES = ("tls_ca_file", "tls_cert", "tls_key")


class SchedulerFileError(ValueError):
    """A scheduler file that cannot be read or does not hold an address."""


def write_scheduler_file(
    path: str | os.PathLike[str],
    address: str,
    security: Security,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write `address`, the token and the TLS file paths to `path` (mode 0600), with the
    fields of `extra` (which readers of scheduler files ignore).

    The file is replaced atomically, so a reader never sees half of it. Raises `OSError`.
    """
    target = Path(path)
    info: dict[str, Any] = {"address": address, "token": security.token, **(extra or {})}
    if security.tls:
        info["tls"] = {
            key: (str(Path(value).resolve()) if key in _FILES and value is not None else value)
            for key, value in security.tls_settings().items()
        }
    if security.tls_fingerprint is not None:
        # The token and the certificate pin as one string, to hand a remote client.
        info["credential"] = security.credential
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_scheduler_file(path: str | os.PathLike[str]) -> tuple[str, Security]:
    """The address and credentials in a scheduler file.

    Raises `SchedulerFileError` (a `ValueError`) if the file is missing, is not JSON or
    has no address.
    """
    try:
        with open(path) as f:
            info = json.load(f)
    except OSError as exc:
        raise SchedulerFileError(f"cannot read scheduler file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SchedulerFileError(f"scheduler file {path} is not JSON: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise SchedulerFileError(f"scheduler file {path} has no address")
    return info["address"], Security.from_tls_settings(info.get("tls"), info.get("token"))


def remove_scheduler_file(path: str | os.PathLike[str], address: str) -> None:
    """Remove the scheduler file if it still names `address` (another scheduler may have
    replaced it since); never raises."""
    try:
        current, _ = read_scheduler_file(path)
        if current == address:
            Path(path).unlink()
    except (OSError, SchedulerFileError):
        pass
