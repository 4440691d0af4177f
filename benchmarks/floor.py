"""The floor under the transfer rows: raw loopback TCP between two processes.

Moves `megabytes` from one process to another over a loopback TCP socket with plain
blocking ``sendall`` (in 512 KiB writes) and ``recv_into`` — no framing, no pickling, no
event loop — into a fresh buffer of each kind a receiver may use:

- ``"bytearray"``: zero-filled by Python before the socket writes it;
- ``"mapping"``: a private anonymous mapping that asks for transparent huge pages
  (what trident receives large frames into, `trident.comm.buffers`).

The fastest kind is the floor: no runtime moves data between processes faster on the
same machine.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import socket
import statistics
import time

WRITE_BYTES = 512 * 1024
KINDS = ("bytearray", "mapping")


def _buffer(kind: str, size: int) -> bytearray | mmap.mmap:
    if kind == "bytearray":
        return bytearray(size)
    mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):
            mapping.madvise(mmap.MADV_HUGEPAGE)
    return mapping


def _receive(port: int, size: int, repeats: int, kind: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(repeats):
            buffer = _buffer(kind, size)
            view = memoryview(buffer)
            received = 0
            while received < size:
                received += sock.recv_into(view[received:])
            view.release()
            del buffer
            sock.sendall(b"k")


def loopback_mb_per_s(megabytes: int = 200, repeats: int = 3, kind: str = "mapping") -> float:
    """Median MB/s of `repeats` transfers of `megabytes` between two processes, received
    into buffers of `kind` (one of `KINDS`)."""
    size = megabytes * 2**20
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        receiver = multiprocessing.get_context("spawn").Process(
            target=_receive, args=(port, size, repeats, kind)
        )
        receiver.start()
        connection, _ = server.accept()
        data = memoryview(os.urandom(size))
        rates = []
        with connection:
            for _ in range(repeats):
                start = time.perf_counter()
                for offset in range(0, size, WRITE_BYTES):
                    connection.sendall(data[offset : offset + WRITE_BYTES])
                connection.recv(1)
                rates.append(megabytes / (time.perf_counter() - start))
        receiver.join()
    return statistics.median(rates)


def floor_mb_per_s(megabytes: int = 200, repeats: int = 3) -> dict[str, float]:
    """`loopback_mb_per_s` for each kind of receive buffer."""
    return {kind: loopback_mb_per_s(megabytes, repeats, kind) for kind in KINDS}


if __name__ == "__main__":
    for kind, rate in floor_mb_per_s().items():
        print(f"raw loopback between two processes, into a {kind}: {rate:,.0f} MB/s")
