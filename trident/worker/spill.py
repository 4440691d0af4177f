"""`SpillBuffer`: a worker's results, kept in memory while they fit and on disk after.

The mapping a worker with a memory limit stores its results in. Values live in memory
(`fast`, least recently used first) until their total size passes `target` bytes; the
least recently used ones are then written to files in a local directory (`slow`) and
read back transparently on access. `evict` spills one more value on request (the
worker's memory monitor does that when the process as a whole uses too much).

Reading a value that is in memory costs a dict lookup and a move to the end of the LRU
order. Writing one costs its size estimate and, past `target`, the spilling. Values
that cannot be pickled are never spilled.

Thread safety: task threads read values while the event loop stores, drops and spills
them (and the memory monitor spills from a thread of its own). Every change to the
bookkeeping happens under one lock, never held while a file is written or read; a
read finds the value in memory without the lock. Each spill writes a fresh file, so a
value replaced while it was being written or read back is never confused with the new
one.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import psutil

from ..protocol.serialize import Serialized, dumps, loads, sizeof

logger = logging.getLogger("trident.worker")

_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
#: Spill directories live under this folder of the system's temporary directory.
SPILL_ROOT = "trident-spill"


class SpillBuffer(MutableMapping[str, Any]):
    """Key -> value, in memory up to `target` bytes and on disk in `directory` beyond.

    Arguments:
        directory: where spilled values go (created if missing; `close` removes it).
        target: bytes of values kept in memory before the least recently used ones
            are spilled; a single value larger than this goes straight to disk.
    """

    def __init__(self, directory: str | os.PathLike[str], target: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.target = target
        #: values in memory, least recently used first
        self.fast: OrderedDict[str, Any] = OrderedDict()
        #: spilled key -> (its file, bytes on disk)
        self.slow: dict[str, tuple[Path, int]] = {}
        self._weights: dict[str, int] = {}
        #: bytes of the values in memory (their size estimates)
        self.fast_bytes = 0
        #: bytes of the values on disk
        self.spilled_bytes = 0
        self._unspillable: set[str] = set()
        self._files = itertools.count()
        self._lock = threading.Lock()

    # --- mapping ---------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        fast = self.fast
        try:
            value = fast[key]
        except KeyError:
            return self._read_spilled(key)
        with contextlib.suppress(KeyError):  # spilled meanwhile: the value is still valid
            fast.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        weight = sizeof(value)
        if weight > self.target:
            written = self._write(key, value)
            if written is not None:
                with self._lock:
                    self._discard(key)
                    self._on_disk(key, written)
                return
        with self._lock:
            self._discard(key)
            self.fast[key] = value
            self._weights[key] = weight
            self.fast_bytes += weight
        while self.fast_bytes > self.target and self.evict():
            pass

    def __delitem__(self, key: str) -> None:
        with self._lock:
            if not self._discard(key):
                raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self.fast or key in self.slow

    def __iter__(self) -> Iterator[str]:
        while True:
            try:
                keys = list(self.fast)
            except RuntimeError:  # a reading thread reordered it meanwhile
                continue
            break
        yield from keys
        yield from list(self.slow)

    def __len__(self) -> int:
        return len(self.fast) + len(self.slow)

    # --- spilling ----------------------------------------------------------------------

    def evict(self) -> int:
        """Spill the least recently used value that can be; return its size estimate,
        or 0 when nothing in memory can be spilled.

        The value is written without holding the lock, so readers and the event loop
        are not held up by the disk; it leaves memory only once it is on disk.
        """
        while True:
            with self._lock:
                candidate = self._least_recent_spillable()
            if candidate is None:
                return 0
            key, value = candidate
            written = self._write(key, value)
            with self._lock:
                if written is None:
                    if key not in self._unspillable:
                        return 0  # the disk refused it: stop for now
                    continue
                if self.fast.get(key) is not value:  # dropped or replaced meanwhile
                    _remove(written[0])
                    continue
                weight = self._weights.pop(key)
                del self.fast[key]
                self.fast_bytes -= weight
                self._on_disk(key, written)
                return max(weight, 1)

    def set_target(self, target: int) -> None:
        """Keep at most `target` bytes of values in memory from now on (the memory
        monitor lowers it while the process's unmanaged memory grows); values beyond it
        are spilled by the next `shrink` or store."""
        self.target = max(0, target)

    def shrink(self) -> int:
        """Spill least recently used values until those in memory fit the target;
        return the bytes spilled."""
        total = 0
        while self.fast_bytes > self.target:
            freed = self.evict()
            if not freed:
                break
            total += freed
        return total

    def close(self) -> None:
        """Forget every value and remove the directory."""
        with self._lock:
            self.fast.clear()
            self.slow.clear()
            self._weights.clear()
            self.fast_bytes = self.spilled_bytes = 0
        shutil.rmtree(self.directory, ignore_errors=True)

    def _least_recent_spillable(self) -> tuple[str, Any] | None:
        """The least recently used value not known to be unpicklable (lock held)."""
        while True:
            try:
                for key, value in self.fast.items():
                    if key not in self._unspillable:
                        return key, value
                return None
            except RuntimeError:  # a reading thread reordered `fast` meanwhile
                continue

    def _write(self, key: str, value: Any) -> tuple[Path, int] | None:
        """Write `value` to a fresh file; return it and its size, or None (a value that
        cannot be pickled is marked never to be tried again)."""
        try:
            payload = dumps(value)
        except Exception as exc:
            logger.debug("value of %r cannot be spilled: %r", key, exc)
            with self._lock:
                self._unspillable.add(key)
            return None
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
        path = self.directory / f"{digest}-{next(self._files)}"
        try:
            with open(path, "wb") as file:
                file.write(_COUNT.pack(len(payload.buffers)))
                for part in (payload.header, *payload.buffers):
                    size = part.nbytes if isinstance(part, memoryview) else len(part)
                    file.write(_LENGTH.pack(size))
                for part in (payload.header, *payload.buffers):
                    file.write(part)
        except OSError as exc:
            logger.warning("could not spill %r to %s: %s", key, path, exc)
            _remove(path)
            return None
        return path, payload.nbytes

    def _on_disk(self, key: str, written: tuple[Path, int]) -> None:
        self.slow[key] = written
        self.spilled_bytes += written[1]

    def _read_spilled(self, key: str) -> Any:
        while True:
            with self._lock:
                if key in self.fast:  # read back by another thread meanwhile
                    return self.fast[key]
                entry = self.slow.get(key)
                if entry is None:
                    raise KeyError(key)
            try:
                parts = _read_file(entry[0])
            except FileNotFoundError:
                continue  # read back, dropped or replaced meanwhile: look again
            break
        value = loads(Serialized(parts[0], parts[1:]))
        weight = sizeof(value)
        with self._lock:
            # Back into memory if it fits and is still the value spilled under `key`.
            if self.slow.get(key) is entry and self.fast_bytes + weight <= self.target:
                self._forget_spilled(key)
                self.fast[key] = value
                self._weights[key] = weight
                self.fast_bytes += weight
        return value

    def _discard(self, key: str) -> bool:
        """Forget `key` wherever it is (the lock is held); False if it was not here."""
        self._unspillable.discard(key)
        if key in self.fast:
            del self.fast[key]
            self.fast_bytes -= self._weights.pop(key)
            return True
        if key in self.slow:
            self._forget_spilled(key)
            return True
        return False

    def _forget_spilled(self, key: str) -> None:
        path, size = self.slow.pop(key)
        self.spilled_bytes -= size
        _remove(path)

    def __repr__(self) -> str:
        return (
            f"<SpillBuffer {len(self.fast)} in memory ({self.fast_bytes} bytes), "
            f"{len(self.slow)} on disk ({self.spilled_bytes} bytes)>"
        )


def _read_file(path: Path) -> list[memoryview]:
    """The pickle stream and buffers of a spilled value. Raises `FileNotFoundError`."""
    with open(path, "rb") as file:
        (count,) = _COUNT.unpack(file.read(_COUNT.size))
        sizes = [_LENGTH.unpack(file.read(_LENGTH.size))[0] for _ in range(count + 1)]
        parts = []
        for size in sizes:
            part = bytearray(size)
            file.readinto(part)
            parts.append(memoryview(part))
    return parts


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def spill_directory(parent: str | None = None) -> Path:
    """A fresh directory for one worker's spilled values, under `parent` (default: the
    system's temporary directory); directories of worker processes that no longer
    exist are removed on the way (a worker killed with SIGKILL cannot clean up)."""
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir()) / SPILL_ROOT
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("worker-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=root))
