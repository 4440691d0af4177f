"""`unique_hex`: unique ids without a system call each."""

from __future__ import annotations

import os
import re

import pytest

from trident._unique import unique_hex


def test_ids_are_32_hex_digits_and_never_repeat():
    ids = [unique_hex() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_ids_of_its_own():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id, then leave without running pytest's cleanup
        os.write(write, unique_hex().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child[:16] != unique_hex()[:16]
