"""The floor under the transfer rows: raw loopback TCP between two processes.

Moves `megabytes` from one process to another over a loopback TCP socket with plain
blocking ``sendall`` / ``recv_into`` into a fresh buffer — no framing, no pickling, no
event loop. No runtime can move data between processes faster than this on the same
machine, so the transfer rows are reported against it.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import time


def _receive(port: int, size: int, repeats: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(repeats):
            buffer = bytearray(size)
            view = memoryview(buffer)
            received = 0
            while received < size:
                received += sock.recv_into(view[received:])
            del view
            sock.sendall(b"k")


def loopback_mb_per_s(megabytes: int = 200, repeats: int = 3) -> float:
    """Median MB/s of `repeats` transfers of `megabytes` between two processes."""
    size = megabytes * 2**20
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        receiver = multiprocessing.get_context("spawn").Process(
            target=_receive, args=(port, size, repeats)
        )
        receiver.start()
        connection, _ = server.accept()
        data = memoryview(os.urandom(size))
        rates = []
        with connection:
            for _ in range(repeats):
                start = time.perf_counter()
                connection.sendall(data)
                connection.recv(1)
                rates.append(megabytes / (time.perf_counter() - start))
        receiver.join()
    return statistics.median(rates)


if __name__ == "__main__":
    print(f"raw loopback between two processes: {loopback_mb_per_s():,.0f} MB/s")
