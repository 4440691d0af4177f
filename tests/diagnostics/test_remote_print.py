"""`trident.print` / `trident.warn`: in a task they also show on the clients (dask's
``distributed.print`` / ``warn``); elsewhere they are ``print`` and ``warnings.warn``."""

from __future__ import annotations

import sys
import warnings

import pytest

import trident
from trident import get_worker

from ..inprocess import in_process_client
from ..polling import wait_until_true


def shout(x):
    trident.print("task says", x, sep=":", end="!\n")
    trident.print("to stderr", file=sys.stderr)
    trident.warn("careful", RuntimeWarning)
    return get_worker().address


def test_task_output_and_warnings_reach_the_client(capsys):
    with in_process_client() as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.submit(shout, 7).result()
        seen = {"out": "", "err": ""}

        def both_printed_twice():  # once by the worker, once by the client (one process)
            captured = capsys.readouterr()
            seen["out"] += captured.out
            seen["err"] += captured.err
            return seen["out"].count("task says:7!\n") == 2 and seen["err"].count("to stderr") == 2

        wait_until_true(both_printed_twice)
        wait_until_true(lambda: sum(str(w.message) == "careful" for w in caught) >= 2)
        assert {w.category for w in caught if str(w.message) == "careful"} == {RuntimeWarning}


def test_outside_tasks_they_are_print_and_warn(capsys):
    trident.print("plain", 1, sep="-")
    assert capsys.readouterr().out == "plain-1\n"
    with pytest.warns(UserWarning, match="plain warning"):
        trident.warn("plain warning")


def test_events_of_other_shapes_on_the_topics_are_ignored(capsys):
    from trident.client.remote_output import show_print, show_warning

    show_print((0.0, "not a dict"))
    show_print((0.0, {"other": 1}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        show_warning((0.0, ["not", "a", "dict"]))
    assert capsys.readouterr().out == ""
