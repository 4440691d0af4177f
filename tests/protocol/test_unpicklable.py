"""Finding the part of a value that cannot be pickled, and the error that names it."""

from __future__ import annotations

import functools
import pickle
import threading

from trident.protocol.errors import SerializationError
from trident.protocol.unpicklable import find_unpicklable, pickling_error, unpicklable_error


class Session:
    def __init__(self) -> None:
        self.name = "db"
        self.conn = threading.Lock()


class Slotted:
    __slots__ = ("handle",)

    def __init__(self) -> None:
        self.handle = threading.Lock()


def first(x: object, y: object) -> object:
    return x


def path_of(value: object) -> str:
    found = find_unpicklable(value, "value")
    assert found is not None
    path, culprit, error = found
    assert isinstance(culprit, type(threading.Lock()))
    assert "_thread.lock" in str(error)
    return path


def test_picklable_values_have_no_culprit():
    assert find_unpicklable({"a": [1, 2, (3, "x")]}, "value") is None
    assert pickling_error(lambda: 1) is None  # cloudpickle handles it


def test_paths_through_containers_objects_and_callables():
    assert path_of([1, {"conn": threading.Lock()}]) == "value[1]['conn']"
    assert path_of({"s": Session()}) == "value['s'].conn"
    assert path_of(Slotted()) == "value.handle"
    assert path_of(functools.partial(first, 1, y=threading.Lock())) == "value.keywords['y']"
    lock = threading.Lock()
    assert path_of(lambda: lock) == "value.<closure lock>"
    assert path_of({threading.Lock()}) == "value.<item 0>"


def test_the_error_is_a_picklable_type_and_pickling_error():
    error = unpicklable_error("the thing", {"args": (Session(),)}, TypeError("boom"))
    assert isinstance(error, SerializationError)
    assert isinstance(error, TypeError)
    assert isinstance(error, pickle.PicklingError)
    assert str(error) == (
        "cannot pickle the thing: args[0].conn -> _thread.lock "
        "(cannot pickle '_thread.lock' object)"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.type_name) == ("args[0].conn", "_thread.lock")


def test_surely_picklable_judges_by_type_without_pickling():
    import numpy as np
    import pandas as pd

    from trident.protocol.unpicklable import surely_picklable

    frame = pd.DataFrame(
        {"x": [1.0, 2.0], "when": pd.to_datetime(["2000", "2001"])},
        index=pd.Index([3, 4]),
    )
    for value in (1, "s", b"b", None, np.arange(3), np.float64(1), frame, frame.x, frame.index):
        assert surely_picklable(value), value
    # Python objects inside (or an unknown type): unknown, so pickling decides
    held = pd.DataFrame({"o": [threading.Lock()]})
    for value in (np.array([object()]), held, held.o, [1], Session()):
        assert not surely_picklable(value), value
    assert pickling_error(held) is not None

    class Declared:
        def __trident_surely_picklable__(self) -> bool:
            return True

    assert surely_picklable(Declared())
