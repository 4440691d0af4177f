"""`SpillBuffer`: a worker's results, kept in memory while they fit and on disk after.

The mapping a worker with a memory limit stores its results in. Values live in memory
(`fast`, least recently used first) until their total size passes `target` bytes; the
least recently used ones are then written to files in a local directory (`slow`) and
read back transparently on access. `evict` spills one more value on request (the
worker's memory monitor does that when the process as a whole uses too much).

A value that asks for it goes to disk as soon as it is stored, however much room is
left: one whose type has a ``__trident_cold__`` method returning ``COLD_READ`` or
``COLD_PARTS`` (`cold_kind`). The exchanges of `trident.shuffle` mark the values a
worker receives this way when the exchange is large, so they wait on disk until the
tasks that assemble them read them back, as dask.distributed's peer-to-peer shuffle
keeps its shards. Such a value is stored in memory and written by a thread of the
buffer's own (so the caller, the worker's event loop, does not wait on the disk); it
leaves memory once it is written. While more than ``COLD_QUEUE_BYTES`` wait for that
thread, the caller writes the next cold value itself. `flush_cold` waits for the
writes queued so far. A ``COLD_READ`` value is read back like any spilled value (into
memory while it fits). A ``COLD_PARTS`` value is one whose readers each take one of its
parts: it is written as sections, one per part (its type's ``__trident_parts__``
returns them, with an opener), and each access returns what the opener makes of a
`ColdParts` handle, which reads one section at a time straight from the file (one
read of just those bytes). Such a value never comes back into memory.

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
from collections import OrderedDict, deque
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import psutil

from ..protocol.serialize import Serialized, dumps, loads, sizeof

logger = logging.getLogger("trident.worker")

_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
#: each part of a spill file starts at a multiple of this offset, so that the arrays read
#: back from it are aligned
_ALIGN = 64
#: each section of a ``COLD_PARTS`` file, and each buffer in it, starts at a multiple of
#: this offset, so that the arrays read back from it are aligned
_SECTION_ALIGN = 8
_ZEROS = bytes(_SECTION_ALIGN)
#: buffers per gathered write of a ``COLD_PARTS`` file (within every system's IOV_MAX)
_WRITEV_BUFFERS = 512
#: what a value's ``__trident_cold__`` returns to be written to disk as it is stored
#: and read back like any spilled value
COLD_READ = "read"
#: ... and written as one section per part (``__trident_parts__``), never read back
#: whole: each reader reads the sections it needs (its readers each take one part)
COLD_PARTS = "parts"
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
            comes back into memory while it fits under the target, a ``COLD_PARTS``
            one never (each access reads the sections its reader asks for).
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
        #: keys on disk that were stored ``COLD_PARTS``: their opener and sections
        self._parts: dict[str, _Sections] = {}
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
            written = self._write(key, value, cold)
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
            written = self._write(key, value, cold_kind(value))
            with self._lock:
                if written is None:
                    if key not in self._unspillable:
                        return 0  # the disk refused it: stop for now
                    continue
                weight = self._move_to_disk(key, value, written)
                if weight is None:
                    continue
                return max(weight, 1)

    def _move_to_disk(self, key: str, value: Any, written: _Written) -> int | None:
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
            written = self._write(key, value, cold)
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
            self._parts.clear()
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

    def _write(self, key: str, value: Any, kind: str | None = None) -> _Written | None:
        """Write `value` to a fresh file; return it, its size and, for a ``COLD_PARTS``
        `kind`, its sections; or None (a value that cannot be pickled is marked never to
        be tried again)."""
        try:
            if kind == COLD_PARTS:
                opener, parts = type(value).__trident_parts__(value)
                payloads = [dumps(part) for part in parts]
            else:
                payloads = [dumps(value)]
        except Exception as exc:
            logger.debug("value of %r cannot be spilled: %r", key, exc)
            with self._lock:
                self._unspillable.add(key)
            return None
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
        path = self.directory / f"{digest}-{next(self._files)}"
        try:
            if kind == COLD_PARTS:
                spans, size = _write_sections(path, payloads)
            else:
                with open(path, "wb") as file:
                    _write_payload(file, payloads[0])
                size = payloads[0].nbytes
        except OSError as exc:
            logger.warning("could not spill %r to %s: %s", key, path, exc)
            _remove(path)
            return None
        if kind == COLD_PARTS:
            return path, size, (opener, spans)
        return path, size, None

    def _on_disk(self, key: str, written: _Written) -> None:
        path, size, sections = written
        self.slow[key] = (path, size)
        self.spilled_bytes += size
        if sections is not None:
            self._parts[key] = sections

    def _read_spilled(self, key: str) -> Any:
        while True:
            with self._lock:
                if key in self.fast:  # read back by another thread meanwhile
                    return self.fast[key]
                entry = self.slow.get(key)
                if entry is None:
                    raise KeyError(key)
                sections = self._parts.get(key)
            if sections is not None:
                # Its readers each take a part: they read their sections from the file,
                # and nothing is read here or kept in memory.
                opener, spans = sections
                return opener(ColdParts(entry[0], spans))
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
        self._parts.pop(key, None)
        self.spilled_bytes -= size
        _remove(path)

    def __repr__(self) -> str:
        return (
            f"<SpillBuffer {len(self.fast)} in memory ({self.fast_bytes} bytes), "
            f"{len(self.slow)} on disk ({self.spilled_bytes} bytes)>"
        )


def cold_kind(value: Any) -> str | None:
    """``COLD_READ`` or ``COLD_PARTS`` when `value` asks to go to disk as it is stored
    (what its type's ``__trident_cold__`` method returns for it), else None. Looked up
    on the type, so objects that answer any attribute (a pandas frame's columns,
    proxies) never ask by accident; any other answer is ignored, and so is
    ``COLD_PARTS`` from a type without a ``__trident_parts__`` method."""
    method = getattr(type(value), "__trident_cold__", None)
    if not callable(method):
        return None
    kind = method(value)
    if kind == COLD_PARTS and not callable(getattr(type(value), "__trident_parts__", None)):
        return None
    return kind if kind in (COLD_READ, COLD_PARTS) else None


class ColdParts:
    """Read access to the sections of a value stored ``COLD_PARTS``: what the value's
    opener (from its type's ``__trident_parts__``) is called with at each access.

    ``__trident_parts__()`` returns ``(opener, parts)``: `parts` a sequence of picklable
    objects, each written as one section of the value's file (pickled, its out-of-band
    buffers laid out after it), and `opener` a callable kept in memory while the value
    is on disk (keep it small). Reading the key calls ``opener(ColdParts(...))`` and
    returns what it returns; `read` then unpickles one section from one read of its
    bytes, into memory of its own (nothing stays mapped or cached).

    The file is opened at each `read`: one that was removed (its key released or
    replaced, or the buffer closed) raises `FileNotFoundError`.
    """

    __slots__ = ("_spans", "path")

    def __init__(self, path: Path, spans: tuple[tuple[int, tuple[int, ...]], ...]):
        self.path = path
        #: per section: its offset in the file, then the sizes of its pickle stream and
        #: each of its buffers (each starting at a multiple of _SECTION_ALIGN)
        self._spans = spans

    def __len__(self) -> int:
        return len(self._spans)

    def read(self, index: int) -> Any:
        """Section `index`, unpickled. Raises `IndexError` for a section that does not
        exist and `FileNotFoundError` when the file is gone."""
        offset, sizes = self._spans[index]
        starts = []
        position = 0
        for size in sizes:
            position += -position % _SECTION_ALIGN
            starts.append(position)
            position += size
        data = bytearray(position)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            view = memoryview(data)
            done = 0
            while done < position:
                n = os.preadv(fd, [view[done:]], offset + done)
                if n <= 0:
                    raise OSError(f"{self.path} ends before its section {index}")
                done += n
        finally:
            os.close(fd)
        views = [view[start : start + size] for start, size in zip(starts, sizes, strict=True)]
        return loads(Serialized(views[0], views[1:]))


#: (opener, spans) of a value stored ``COLD_PARTS`` (see `ColdParts`)
_Sections = tuple[Any, tuple[tuple[int, tuple[int, ...]], ...]]
#: what `SpillBuffer._write` wrote: the file, its bytes, and the sections of a
#: ``COLD_PARTS`` value (None for any other)
_Written = tuple[Path, int, _Sections | None]


def _write_payload(file: Any, payload: Serialized) -> None:
    """A spilled value's file: the count of buffers, the sizes of the pickle stream and
    each buffer, then each of them at a multiple of `_ALIGN` (see `_read_file`)."""
    parts = (payload.header, *payload.buffers)
    sizes = [p.nbytes if isinstance(p, memoryview) else len(p) for p in parts]
    file.write(_COUNT.pack(len(payload.buffers)))
    for size in sizes:
        file.write(_LENGTH.pack(size))
    position = _COUNT.size + _LENGTH.size * len(sizes)
    for part, size in zip(parts, sizes, strict=True):
        padding = -position % _ALIGN
        file.write(bytes(padding))
        file.write(part)
        position += padding + size


def _write_sections(
    path: Path, payloads: list[Serialized]
) -> tuple[tuple[tuple[int, tuple[int, ...]], ...], int]:
    """Write a ``COLD_PARTS`` file: one section per payload, its pickle stream then each
    buffer, each at a multiple of `_SECTION_ALIGN` from the file's start. Returns each
    section's offset and sizes (what `ColdParts` reads), and the file's size.

    The pieces go out in gathered writes of up to `_WRITEV_BUFFERS` buffers (a
    section's pieces are often a few KiB: one write each would be many system calls,
    and a buffered file would copy them once more)."""
    spans = []
    pieces: list[Any] = []
    position = 0
    for payload in payloads:
        pad = -position % _SECTION_ALIGN
        if pad:
            pieces.append(_ZEROS[:pad])
            position += pad
        offset = position
        sizes = []
        for part in (payload.header, *payload.buffers):
            view = memoryview(part).cast("B")
            pad = -(position - offset) % _SECTION_ALIGN
            if pad:
                pieces.append(_ZEROS[:pad])
                position += pad
            if view.nbytes:
                pieces.append(view)
            sizes.append(view.nbytes)
            position += view.nbytes
        spans.append((offset, tuple(sizes)))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for start in range(0, len(pieces), _WRITEV_BUFFERS):
            batch = pieces[start : start + _WRITEV_BUFFERS]
            while batch:
                written = os.writev(fd, batch)
                # a short write (rare on a regular file): go on from where it stopped
                while batch and written >= len(batch[0]):
                    written -= len(batch[0])
                    batch.pop(0)
                if batch and written:
                    batch[0] = memoryview(batch[0])[written:]
    finally:
        os.close(fd)
    return tuple(spans), position


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
