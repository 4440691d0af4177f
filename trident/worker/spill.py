"""`SpillBuffer`: a worker's results, kept in memory while they fit and on disk after.

The mapping a worker with a memory limit stores its results in. Values live in memory
(`fast`, least recently used first) until their total size passes `target` bytes; the
least recently used ones are then written to files in a local directory (`slow`) and
read back transparently on access. `evict` spills one more value on request (the
worker's memory monitor does that when the process as a whole uses too much).

A value that asks for it goes to disk as soon as it is stored, however much room is
left: one whose type has a ``__trident_cold__`` method returning ``COLD_READ`` or
``COLD_MAP`` (`cold_kind`). The exchanges of `trident.shuffle` mark the bundles a
worker receives this way when the exchange is large, so they wait on disk until the
tasks that assemble them read them back, as dask.distributed's peer-to-peer shuffle
keeps its shards. Such a value is stored in memory and written by a thread of the
buffer's own (so the caller, the worker's event loop, does not wait on the disk); it
leaves memory once it is written. While more than ``COLD_QUEUE_BYTES`` wait for that
thread, the caller writes the next cold value itself. `flush_cold` waits for the
writes queued so far. A ``COLD_READ`` value is read back like any spilled value (into
memory while it fits); a ``COLD_MAP`` value is read back at each access with its
buffers mapped from the file (read-only: only the pages its reader touches are read)
and never comes back into memory, for values of which each reader takes a small part.

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
import mmap
import os
import shutil
import struct
import tempfile
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import psutil

from ..protocol.serialize import Serialized, dumps, loads, sizeof

logger = logging.getLogger("trident.worker")

_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
#: each part of a spill file starts at a multiple of this offset, so that arrays mapped
#: from the file (cold values, see `_map_file`) are aligned
_ALIGN = 64
#: bytes per write of a file that is read back mapped (`_map_file`)
_MAPPED_WRITE = 64 * 2**10
#: what a value's ``__trident_cold__`` returns to be written to disk as it is stored
#: and read back like any spilled value
COLD_READ = "read"
#: ... and read back mapped at each access, never kept in memory (its readers each take
#: a small part of it)
COLD_MAP = "map"
#: bytes of cold values waiting in memory for the writer thread at most; beyond, the
#: caller writes the next one itself (so a slow disk holds the producer back)
COLD_QUEUE_BYTES = 32 * 2**20
#: Spill directories live under this folder of the system's temporary directory.
SPILL_ROOT = "trident-spill"


class SpillBuffer(MutableMapping[str, Any]):
    """Key -> value, in memory up to `target` bytes and on disk in `directory` beyond.

    Arguments:
        directory: where spilled values go (created if missing; `close` removes it).
        target: bytes of values kept in memory before the least recently used ones
            are spilled; a single value larger than this goes straight to disk, and so
            does a value that `cold_kind` says should (kept in memory only if it
            cannot be pickled or the disk refuses it). A value read back from disk
            comes back into memory while it fits under the target, a ``COLD_MAP``
            one never (it is read back mapped from its file at each access).
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
        #: values written to disk as they were stored because `cold_kind` asked, and
        #: their size estimates (totals since the buffer was made)
        self.cold_count = 0
        self.cold_bytes = 0
        #: cold values stored in memory and not yet written (key, size), oldest first
        self._cold_queue: deque[tuple[str, int]] = deque()
        #: their bytes: past COLD_QUEUE_BYTES, a cold value is written as it is stored
        self._cold_pending = 0
        self._cold_wake = threading.Condition()
        self._cold_busy = False
        self._cold_writer: threading.Thread | None = None
        self._closed = False
        self._unspillable: set[str] = set()
        #: keys on disk that were stored ``COLD_MAP``: read back mapped, never kept
        self._cold_keys: set[str] = set()
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
        self.put(key, value, sizeof(value))

    def put(self, key: str, value: Any, weight: int) -> None:
        """``self[key] = value`` for a value whose `sizeof` the caller already knows
        (`weight`, in bytes): sizing a dataframe costs hundreds of microseconds."""
        cold = cold_kind(value)
        if weight > self.target or (cold and self._cold_pending >= COLD_QUEUE_BYTES):
            written = self._write(key, value, mapped=cold == COLD_MAP)
            if written is not None:
                with self._lock:
                    self._discard(key)
                    self._on_disk(key, written)
                    if cold:
                        self._count_cold(key, weight, cold)
                return
        with self._lock:
            self._discard(key)
            self.fast[key] = value
            self._weights[key] = weight
            self.fast_bytes += weight
        if cold:
            self._queue_cold(key, weight)
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
                weight = self._move_to_disk(key, value, written)
                if weight is None:
                    continue
                return max(weight, 1)

    def _move_to_disk(self, key: str, value: Any, written: tuple[Path, int]) -> int | None:
        """`value` of `key` was written (`written` from `_write`): drop it from memory
        and return its weight; None, and the file removed, if `key` was dropped or
        replaced meanwhile (the lock is held)."""
        if self.fast.get(key) is not value:
            _remove(written[0])
            return None
        weight: int = self._weights.pop(key)
        del self.fast[key]
        self.fast_bytes -= weight
        self._on_disk(key, written)
        return weight

    def flush_cold(self, timeout: float | None = None) -> bool:
        """Wait until the cold values stored so far are written (or dropped, or known
        not to pickle); False if `timeout` seconds passed first."""
        with self._cold_wake:
            return self._cold_wake.wait_for(
                lambda: not self._cold_queue and not self._cold_busy, timeout
            )

    def _count_cold(self, key: str, weight: int, kind: str) -> None:
        """`key`, just put on disk, was stored cold (the lock is held)."""
        if kind == COLD_MAP:
            self._cold_keys.add(key)
        self.cold_count += 1
        self.cold_bytes += weight

    def _queue_cold(self, key: str, weight: int) -> None:
        with self._cold_wake:
            if self._closed:
                return
            self._cold_queue.append((key, weight))
            self._cold_pending += weight
            if self._cold_writer is None:
                self._cold_writer = threading.Thread(
                    target=self._write_cold, name="trident-spill-cold", daemon=True
                )
                self._cold_writer.start()
            self._cold_wake.notify_all()

    def _write_cold(self) -> None:
        """The cold writer's loop: write each queued key's value, then move it from
        memory to disk unless it was dropped, replaced or spilled meanwhile."""
        while True:
            with self._cold_wake:
                self._cold_busy = False
                self._cold_wake.notify_all()
                self._cold_wake.wait_for(lambda: self._cold_queue or self._closed)
                if self._closed:
                    return
                key, weight = self._cold_queue.popleft()
                self._cold_pending -= weight
                self._cold_busy = True
            with self._lock:
                value = self.fast.get(key)
            cold = None if value is None else cold_kind(value)
            if cold is None:
                continue
            written = self._write(key, value, mapped=cold == COLD_MAP)
            if written is None:
                continue  # unpicklable (marked) or the disk refused it: stays in memory
            with self._lock:
                moved = self._move_to_disk(key, value, written)
                if moved is not None:
                    self._count_cold(key, moved, cold)

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
        """Forget every value and remove the directory (after the cold writer's current
        write, if any)."""
        with self._cold_wake:
            self._closed = True
            self._cold_queue.clear()
            self._cold_pending = 0
            self._cold_wake.notify_all()
            writer = self._cold_writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        with self._lock:
            self.fast.clear()
            self.slow.clear()
            self._cold_keys.clear()
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

    def _write(self, key: str, value: Any, mapped: bool = False) -> tuple[Path, int] | None:
        """Write `value` to a fresh file; return it and its size, or None (a value that
        cannot be pickled is marked never to be tried again). `mapped`: the file will be
        read back mapped (a cold value)."""
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
                parts = (payload.header, *payload.buffers)
                sizes = [p.nbytes if isinstance(p, memoryview) else len(p) for p in parts]
                file.write(_COUNT.pack(len(payload.buffers)))
                for size in sizes:
                    file.write(_LENGTH.pack(size))
                position = _COUNT.size + _LENGTH.size * len(sizes)
                for part, size in zip(parts, sizes, strict=True):
                    padding = -position % _ALIGN
                    file.write(bytes(padding))
                    if mapped:
                        # Small writes make small page-cache folios, and a reader that
                        # maps the file then faults in little more than what it touches.
                        view = memoryview(part).cast("B")
                        for start in range(0, size, _MAPPED_WRITE):
                            file.write(view[start : start + _MAPPED_WRITE])
                    else:
                        file.write(part)
                    position += padding + size
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
                cold = key in self._cold_keys
            try:
                parts = (_map_file if cold else _read_file)(entry[0])
            except FileNotFoundError:
                continue  # read back, dropped or replaced meanwhile: look again
            break
        value = loads(Serialized(parts[0], parts[1:]))
        if cold:
            # Its reader takes a part of it (an exchange's assembling task, one output
            # of many): only the pages it touches are read, and none stays resident.
            return value
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
        self._cold_keys.discard(key)
        self.spilled_bytes -= size
        _remove(path)

    def __repr__(self) -> str:
        return (
            f"<SpillBuffer {len(self.fast)} in memory ({self.fast_bytes} bytes), "
            f"{len(self.slow)} on disk ({self.spilled_bytes} bytes)>"
        )


def cold_kind(value: Any) -> str | None:
    """``COLD_READ`` or ``COLD_MAP`` when `value` asks to go to disk as it is stored
    (what its type's ``__trident_cold__`` method returns for it), else None. Looked up
    on the type, so objects that answer any attribute (a pandas frame's columns,
    proxies) never ask by accident; any other answer is ignored."""
    method = getattr(type(value), "__trident_cold__", None)
    if not callable(method):
        return None
    kind = method(value)
    return kind if kind in (COLD_READ, COLD_MAP) else None


def _read_file(path: Path) -> list[memoryview]:
    """The pickle stream and buffers of a spilled value. Raises `FileNotFoundError`."""
    with open(path, "rb") as file:
        (count,) = _COUNT.unpack(file.read(_COUNT.size))
        sizes = [_LENGTH.unpack(file.read(_LENGTH.size))[0] for _ in range(count + 1)]
        position = _COUNT.size + _LENGTH.size * len(sizes)
        parts = []
        for size in sizes:
            padding = -position % _ALIGN
            file.read(padding)
            part = bytearray(size)
            file.readinto(part)
            parts.append(memoryview(part))
            position += padding + size
    return parts


def _map_file(path: Path) -> list[memoryview]:
    """The pickle stream (read) and buffers (read-only views of the file mapped into
    memory, which stay valid after the file is removed) of a spilled value. Raises
    `FileNotFoundError`."""
    with open(path, "rb") as file:
        (count,) = _COUNT.unpack(file.read(_COUNT.size))
        sizes = [_LENGTH.unpack(file.read(_LENGTH.size))[0] for _ in range(count + 1)]
        position = _COUNT.size + _LENGTH.size * len(sizes)
        position += -position % _ALIGN
        file.seek(position)
        header = memoryview(file.read(sizes[0]))
        if not count:
            return [header]
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        # Its reader takes a few slices: no read-ahead, nor pages mapped around them.
        mapped.madvise(mmap.MADV_RANDOM)
    view = memoryview(mapped)
    parts = [header]
    position += sizes[0]
    for size in sizes[1:]:
        position += -position % _ALIGN
        parts.append(view[position : position + size])
        position += size
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
