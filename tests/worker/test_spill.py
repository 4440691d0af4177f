"""SpillBuffer: results in memory up to a target, on disk beyond it, read back on access."""

from __future__ import annotations

import os
import threading

import numpy as np
import psutil
import pytest

from trident.worker import events as ev
from trident.worker import spill
from trident.worker.memory import MemoryMonitor, MemoryThresholds
from trident.worker.spill import SpillBuffer, spill_directory
from trident.worker.state import WorkerState

from .test_state import run


def array(fill, n=1000):
    return np.full(n, fill, dtype=np.int64)  # 8,000 bytes


@pytest.fixture
def buffer(tmp_path):
    spill = SpillBuffer(tmp_path / "spill", target=20_000)
    yield spill
    spill.close()


def test_values_beyond_the_target_are_spilled_least_recently_used_first(buffer):
    buffer["a"] = array(1)
    buffer["b"] = array(2)
    assert list(buffer.fast) == ["a", "b"]
    assert not buffer.slow
    assert buffer["a"][0] == 1  # a is now the most recently used
    buffer["c"] = array(3)
    assert list(buffer.fast) == ["a", "c"]
    assert list(buffer.slow) == ["b"]
    assert buffer.spilled_bytes > 8000
    assert buffer.fast_bytes == 16_000
    assert len(os.listdir(buffer.directory)) == 1
    assert set(buffer) == {"a", "b", "c"}
    assert len(buffer) == 3
    assert "b" in buffer


def test_spilled_values_read_back_transparently_and_deletes_remove_files(buffer):
    for i in range(5):
        buffer[f"k{i}"] = array(i)
    assert len(buffer.slow) == 3
    for i in range(5):
        assert (buffer[f"k{i}"] == array(i)).all()
    del buffer["k0"]
    del buffer["k4"]
    with pytest.raises(KeyError):
        del buffer["k0"]
    assert "k0" not in buffer
    assert len(buffer) == 3
    assert len(os.listdir(buffer.directory)) == len(buffer.slow)
    buffer["k1"] = "replaced"
    assert buffer["k1"] == "replaced"
    assert len(os.listdir(buffer.directory)) == len(buffer.slow)


def test_a_value_larger_than_the_target_goes_straight_to_disk(buffer):
    buffer["big"] = array(7, 10_000)
    assert "big" in buffer.slow
    assert not buffer.fast
    assert (buffer["big"] == 7).all()
    assert "big" in buffer.slow  # too big to come back into memory


def test_unpicklable_values_stay_in_memory(buffer):
    lock = threading.Lock()
    buffer["lock"] = lock
    buffer["a"] = array(1)
    buffer["b"] = array(2)
    buffer["c"] = array(3)
    assert buffer["lock"] is lock
    assert "lock" in buffer.fast
    assert buffer.evict() > 0
    while buffer.evict():
        pass
    assert list(buffer.fast) == ["lock"]
    assert buffer.evict() == 0


class Shard:
    """A value that asks the buffer to keep it on disk (``__trident_cold__``), in
    sections (``"parts"``, the default: its values in 4 runs, read back one at a time
    through a `StoredShard`) or whole, read back into memory (``"read"``)."""

    def __init__(self, values, cold="parts"):
        self.values = values
        self.cold = cold
        self.nbytes = values.nbytes

    def __trident_cold__(self):
        return self.cold

    def __trident_parts__(self):
        return StoredShard, np.array_split(self.values, 4)

    def __reduce__(self):
        return Shard, (self.values, None)


class StoredShard:
    """What reading a `Shard` stored in sections gives: its sections, read on demand."""

    def __init__(self, sections):
        self.sections = sections


class AnswersEverything:
    """An object whose instances answer any attribute (as a proxy might)."""

    def __getattr__(self, name):
        return lambda *args: True


def test_cold_values_go_to_disk_however_much_room_is_left(buffer):
    buffer["warm"] = Shard(array(1), cold=None)
    buffer["cold"] = Shard(array(2))
    buffer["other"] = AnswersEverything()
    buffer["odd"] = Shard(array(4, 100), cold=True)  # not a kind: an ordinary value
    assert buffer.flush_cold(timeout=10)
    assert list(buffer.fast) == ["warm", "other", "odd"]
    assert list(buffer.slow) == ["cold"]
    assert (buffer.cold_count, buffer.cold_bytes) == (1, 8000)
    assert buffer.fast_bytes <= 20_000  # room was left: only the mark sent it to disk
    back = buffer["cold"]
    assert isinstance(back, StoredShard)  # what the opener makes of its sections...
    assert len(back.sections) == 4
    assert list(buffer.slow) == ["cold"]  # ...which stay on disk: they are read again
    assert buffer["cold"] is not back
    assert buffer.evict() > 0  # an ordinary spill and read back still comes back
    assert list(buffer.slow) == ["cold", "warm"]
    assert buffer["warm"].values[0] == 1
    assert "warm" in buffer.fast
    del buffer["cold"]
    del buffer["odd"]
    assert os.listdir(buffer.directory) == []
    with pytest.raises(FileNotFoundError):  # released: its sections are gone
        back.sections.read(0)


def test_cold_parts_read_one_section_at_a_time(buffer, monkeypatch):
    """Each read reads its section's bytes and nothing else, into arrays of their own
    (writeable, aligned), however the sections were sized."""
    values = np.arange(10_001, dtype=np.int64)
    buffer["cold"] = Shard(values)
    assert buffer.flush_cold(timeout=10)
    size = buffer.slow["cold"][1]
    assert size >= values.nbytes
    assert buffer.spilled_bytes == size  # counted on disk, never in memory
    read = []
    preadv = os.preadv

    def counting(fd, buffers, offset):
        n = preadv(fd, buffers, offset)
        read.append(n)
        return n

    monkeypatch.setattr(spill.os, "preadv", counting)
    sections = buffer["cold"].sections
    assert not read  # nothing is read until a section is asked for
    expected = np.array_split(values, 4)
    for i in (2, 0, 3, 1):
        part = sections.read(i)
        np.testing.assert_array_equal(part, expected[i])
        assert part.flags.writeable
        assert part.ctypes.data % 8 == 0
        # this section's values and its pickle stream (a few hundred bytes)
        assert expected[i].nbytes < read[-1] < expected[i].nbytes + 1000
    assert sum(read) < values.nbytes + 4000
    assert buffer.fast_bytes == 0
    with pytest.raises(IndexError):
        sections.read(4)


def test_cold_parts_of_mixed_objects_round_trip(buffer):
    """Sections are any picklable objects, empty ones included."""

    class Mixed(Shard):
        def __trident_parts__(self):
            return StoredShard, [{"a": self.values[:3]}, b"", (), "text", self.values[:0]]

    buffer["mixed"] = Mixed(array(9))
    assert buffer.flush_cold(timeout=10)
    sections = buffer["mixed"].sections
    assert list(sections.read(0)) == ["a"]
    np.testing.assert_array_equal(sections.read(0)["a"], [9, 9, 9])
    assert sections.read(1) == b""
    assert sections.read(2) == ()
    assert sections.read(3) == "text"
    assert sections.read(4).shape == (0,)


def test_cold_values_evicted_before_their_write_keep_their_kind(buffer, monkeypatch):
    """The memory monitor may spill a cold value still waiting for the writer thread:
    it goes to disk in sections all the same."""
    writes = threading.Event()
    monkeypatch.setattr(buffer, "_queue_cold", lambda key, weight: writes.set())
    buffer["cold"] = Shard(array(3))
    assert writes.is_set()  # queued for the writer thread, which never took it
    assert list(buffer.fast) == ["cold"]
    assert buffer.evict() == 8000
    assert list(buffer.slow) == ["cold"]
    assert isinstance(buffer["cold"], StoredShard)


def test_cold_parts_need_a_parts_method():
    class Partless:
        def __trident_cold__(self):
            return "parts"

    assert spill.cold_kind(Partless()) is None
    assert spill.cold_kind(Shard(array(1))) == "parts"
    assert spill.cold_kind(Shard(array(1), cold="read")) == "read"


def test_cold_values_read_into_memory_come_back_like_spilled_ones(buffer):
    buffer["cold"] = Shard(array(5), cold="read")
    assert buffer.flush_cold(timeout=10)
    assert list(buffer.slow) == ["cold"]
    assert buffer.cold_count == 1
    back = buffer["cold"]
    assert (back.values == 5).all()
    assert back.values.flags.writeable  # read into memory of its own
    assert list(buffer.fast) == ["cold"]  # back in memory: it fits
    assert buffer["cold"] is back


def test_cold_values_are_written_by_the_caller_past_the_queue_bound(buffer, monkeypatch):
    monkeypatch.setattr(spill, "COLD_QUEUE_BYTES", 0)
    buffer["cold"] = Shard(array(6))
    assert list(buffer.slow) == ["cold"]  # on disk before the store returned
    assert buffer.cold_count == 1
    assert buffer._cold_writer is None  # no thread was needed


def test_cold_values_dropped_or_replaced_before_the_write_stay_gone(buffer):
    for i in range(20):
        buffer[f"c{i}"] = Shard(array(i, 100))
        if i % 2:
            del buffer[f"c{i}"]
    buffer["c0"] = "replaced"
    assert buffer.flush_cold(timeout=10)
    assert buffer["c0"] == "replaced"
    assert sorted(buffer.slow) == sorted(f"c{i}" for i in range(2, 20, 2))
    assert len(os.listdir(buffer.directory)) == 9
    for i in range(2, 20, 2):
        assert (buffer[f"c{i}"].sections.read(0) == i).all()
    buffer.close()
    assert not buffer.directory.exists()


def test_unpicklable_cold_values_stay_in_memory(buffer):
    class Locked(Shard):
        def __trident_parts__(self):
            return StoredShard, [threading.Lock()]

    value = Locked(array(3))
    buffer["locked"] = value
    assert buffer.flush_cold(timeout=10)
    assert buffer["locked"] is value
    assert buffer.cold_count == 0


def test_readers_in_threads_see_every_value_while_the_loop_spills(buffer):
    for i in range(50):
        buffer[f"k{i}"] = array(i, 200)
    errors = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            for i in range(50):
                try:
                    assert buffer[f"k{i}"][0] == i
                except Exception as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for round_ in range(40):
        for _ in range(20):  # readers pull values back in as fast as this spills them
            if not buffer.evict():
                break
        buffer[f"extra{round_}"] = array(-1, 200)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []


def test_close_removes_the_directory_and_stale_directories_are_purged(tmp_path):
    root = tmp_path / "root"
    directory = spill_directory(str(root))
    assert directory.name.startswith(f"worker-{os.getpid()}-")
    dead = root / "worker-999999999-abc"
    dead.mkdir()
    (dead / "x").write_bytes(b"x")
    assert not psutil.pid_exists(999999999)
    again = spill_directory(str(root))
    assert not dead.exists()
    assert directory.exists()
    assert again.exists()
    spill = SpillBuffer(directory, target=10)
    spill["a"] = array(1)
    spill.close()
    assert not directory.exists()


def test_memory_thresholds_decide_spilling_and_pausing():
    monitor = MemoryMonitor(1000, MemoryThresholds())
    assert monitor.target_bytes == 600
    assert monitor.assess(650).spill_to is None
    assert not monitor.assess(650).paused
    assert monitor.assess(750).spill_to == 600
    assert not monitor.assess(750).paused
    assert monitor.assess(850).paused
    off = MemoryMonitor(1000, MemoryThresholds(None, None, None, None))
    assert off.target_bytes is None
    assert off.assess(10_000).spill_to is None
    assert not off.assess(10_000).paused
    assert MemoryMonitor(0, MemoryThresholds()).target_bytes is None  # no limit


def test_a_paused_worker_state_starts_nothing_until_resumed(tmp_path):
    spill = SpillBuffer(tmp_path / "s", target=1)
    state = WorkerState("w", 1, data=spill)
    state.handle(ev.PauseChanged(True, "test"))
    state.handle(ev.FromScheduler(run("a-1"), "test"))
    _, instructions = state.flush()
    assert instructions == []
    state.handle(ev.PauseChanged(False, "test"))
    _, instructions = state.flush()
    assert [i.key for i in instructions] == ["a-1"]
    run_id = instructions[0].run_id
    state.handle(ev.RunFinished(run_id, array(1), 8000, "x", 0, 1, None, "test"))
    state.validate()
    assert "a-1" in spill.slow  # beyond the target: on disk, and still the worker's data
    spill.close()


def test_put_takes_the_size_the_caller_already_measured(buffer, monkeypatch):
    monkeypatch.setattr(spill, "sizeof", lambda value: pytest.fail("sized again"))
    buffer.put("a", array(1), 8000)
    buffer.put("b", array(2), 15_000)  # the caller's figure counts, not a re-measure
    assert buffer.fast_bytes == 15_000
    assert list(buffer.slow) == ["a"]
    monkeypatch.undo()  # reading a spilled value back measures what came from disk
    assert buffer["a"][0] == 1
