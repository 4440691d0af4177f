"""`receive_buffer`: memory for a large incoming frame that the kernel fills fast.

A 200 MB frame read into a ``bytearray`` costs twice: the bytearray is zero-filled
first, then the socket writes it again, each time faulting in 4 KiB pages. A private
anonymous mapping is not zeroed by Python and, asked to use transparent huge pages,
faults in 2 MiB at a time: on a 2-core Linux machine raw loopback TCP into such a
buffer runs at about twice the speed (`benchmarks/floor.py` measures both).
"""

from __future__ import annotations

import contextlib
import mmap

#: Frames at least this large get a mapping of their own; smaller ones a bytearray.
MAPPED_BYTES = 4 * 2**20


def receive_buffer(n: int) -> bytearray | memoryview:
    """A writable buffer of `n` bytes (contents undefined) to receive a frame into.

    Large buffers are memoryviews of an anonymous mapping, released when the last view
    of it (an array that was unpickled from it, say) is gone.
    """
    if n < MAPPED_BYTES or not hasattr(mmap, "MAP_PRIVATE"):  # MAP_PRIVATE: not on Windows
        return bytearray(n)
    mapping = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):  # Linux; elsewhere the mapping works as it is
        with contextlib.suppress(OSError):
            mapping.madvise(mmap.MADV_HUGEPAGE)
    return memoryview(mapping)
