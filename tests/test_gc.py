"""trident raises the collector's thresholds only while it runs, and only over defaults."""

from __future__ import annotations

import gc

import pytest

from trident import _gc


@pytest.fixture(autouse=True)
def restore_thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_defaults_are_raised_while_trident_runs_and_restored_after():
    gc.set_threshold(*_gc.PYTHON_DEFAULT)
    _gc.acquire()
    _gc.acquire()
    assert gc.get_threshold() == _gc.SERVICE_THRESHOLDS
    _gc.release()
    assert gc.get_threshold() == _gc.SERVICE_THRESHOLDS
    _gc.release()
    assert gc.get_threshold() == _gc.PYTHON_DEFAULT


def test_a_users_own_thresholds_are_left_alone():
    gc.set_threshold(1234, 5, 6)
    _gc.acquire()
    assert gc.get_threshold() == (1234, 5, 6)
    _gc.release()
    assert gc.get_threshold() == (1234, 5, 6)
