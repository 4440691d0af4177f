"""Where a value stops being picklable: the path to the object that fails.

`pickle` says *what* it could not pickle (``cannot pickle '_thread.lock' object``), not
*where* that object sits inside a large argument. `find_unpicklable` walks the value the
way the pickler does — containers, object state, closures and globals of functions,
partials, bound methods — down to the innermost part that still fails on its own, and
`unpicklable_error` turns that into a `SerializationError` such as::

    cannot pickle the arguments of task 'load-…': args[1]['conn'] -> _thread.lock
    (cannot pickle '_thread.lock' object)

Only the error path pays for the walk: each step pickles one part again.
"""

from __future__ import annotations

import functools
import itertools
import pickle
import types
from collections.abc import Iterator

import cloudpickle

from .errors import SerializationError

#: How deep the walk goes, and how many parts of one object it tries.
MAX_DEPTH = 64
MAX_PARTS = 10_000


class _NullFile:
    """A file that forgets what is written: pickling only to see whether it works."""

    def write(self, data: bytes) -> int:
        return len(data)


def pickling_error(obj: object) -> Exception | None:
    """The error pickling `obj` raises, or None: plain pickle first, then cloudpickle, as
    `serialize.dumps` does.

    Nothing is kept and out-of-band buffers are not copied, so arrays cost next to
    nothing; small values cost about a microsecond.
    """
    try:
        pickle.Pickler(_NullFile(), protocol=5, buffer_callback=_out_of_band).dump(obj)
        return None
    except Exception:
        pass
    try:
        cloudpickle.Pickler(_NullFile(), protocol=5, buffer_callback=_out_of_band).dump(obj)
    except Exception as exc:
        return exc
    return None


def surely_picklable(obj: object) -> bool:
    """Whether `obj` pickles, judged from its type alone: numbers, strings and bytes;
    numpy arrays and pandas frames, series and indexes that hold no Python objects; and
    objects whose type says so (``__trident_surely_picklable__(obj)``). False means
    "unknown": `pickling_error` tells for sure, at the cost of pickling."""
    kind = type(obj)
    if kind in _ATOMS:
        return True
    module = kind.__module__
    if module == "numpy":
        return _plain(getattr(obj, "dtype", "object"))
    if module == "pandas" or module.startswith("pandas."):
        dtypes = getattr(obj, "dtypes", None) if kind.__name__ == "DataFrame" else None
        if dtypes is not None:
            index = getattr(obj, "index", None)
            return all(_plain(dtype) for dtype in dtypes) and surely_picklable(index)
        if kind.__name__ == "Series":
            return _plain(obj.dtype) and surely_picklable(obj.index)  # type: ignore[attr-defined]
        dtype = getattr(obj, "dtype", None)
        return kind.__name__.endswith("Index") and dtype is not None and _plain(dtype)
    hook = getattr(kind, "__trident_surely_picklable__", None)
    return bool(hook(obj)) if hook is not None else False


_ATOMS = frozenset({int, float, complex, bool, str, bytes, type(None)})


def _plain(dtype: object) -> bool:
    """Whether a numpy or pandas dtype holds no arbitrary Python objects."""
    return str(dtype) != "object"


def _out_of_band(buffer: object) -> bool:
    return False


def type_name(obj: object) -> str:
    """``module.Qualname`` of the type of `obj` (just the name for builtins)."""
    kind = type(obj)
    module = getattr(kind, "__module__", "") or ""
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def find_unpicklable(obj: object, path: str) -> tuple[str, object, Exception] | None:
    """The innermost part of `obj` that cannot be pickled: (path, part, its error).

    `path` names `obj` itself (``"args"``); parts extend it (``"args[1]['conn']"``,
    ``"value.session"``). Returns None when `obj` pickles.
    """
    error = pickling_error(obj)
    if error is None:
        return None
    seen = {id(obj)}
    for _ in range(MAX_DEPTH):
        for part, child in itertools.islice(_parts(obj), MAX_PARTS):
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_error = pickling_error(child)
            if child_error is not None:
                obj, path, error = child, path + part, child_error
                break
        else:
            break
    return path, obj, error


def unpicklable_error(
    what: str, roots: dict[str, object], error: BaseException
) -> SerializationError:
    """A `SerializationError` for `what`, naming the culprit inside `roots`.

    `roots` maps names to the objects that were pickled together (``{"args": args,
    "kwargs": kwargs}``); `error` is what the pickler raised for them.
    """
    for name, root in roots.items():
        try:
            found = find_unpicklable(root, name)
        except RecursionError:
            found = None
        if found is not None:
            path, culprit, culprit_error = found
            return SerializationError(what, path, type_name(culprit), str(culprit_error))
    name, root = next(iter(roots.items()))
    return SerializationError(what, name, type_name(root), f"{type(error).__name__}: {error}")


# --- the parts of an object, as the pickler sees them -------------------------------


def _parts(obj: object) -> Iterator[tuple[str, object]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
        for key in obj:
            yield f".<key {key!r}>", key
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield f"[{i}]", item
    elif isinstance(obj, (set, frozenset)):
        for i, item in enumerate(obj):
            yield f".<item {i}>", item
    elif isinstance(obj, types.FunctionType):
        yield from _function_parts(obj)
    elif isinstance(obj, types.MethodType):
        yield ".__self__", obj.__self__
        yield ".__func__", obj.__func__
    elif isinstance(obj, functools.partial):
        yield ".func", obj.func
        for i, arg in enumerate(obj.args):
            yield f".args[{i}]", arg
        for key, value in obj.keywords.items():
            yield f".keywords[{key!r}]", value
    else:
        yield from _reduced_parts(obj)


def _function_parts(func: types.FunctionType) -> Iterator[tuple[str, object]]:
    code = func.__code__
    for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
        try:
            yield f".<closure {name}>", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for name in sorted(_global_names(code)):
        if name in func.__globals__:
            yield f".<global {name}>", func.__globals__[name]
    for i, default in enumerate(func.__defaults__ or ()):
        yield f".__defaults__[{i}]", default
    for key, value in (func.__kwdefaults__ or {}).items():
        yield f".__kwdefaults__[{key!r}]", value


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _reduced_parts(obj: object) -> Iterator[tuple[str, object]]:
    try:
        reduced = obj.__reduce_ex__(5)
    except Exception:
        return  # the object itself refuses: it is the culprit
    if not isinstance(reduced, tuple):
        return
    args = reduced[1] if len(reduced) > 1 else ()
    state = reduced[2] if len(reduced) > 2 else None
    if isinstance(state, tuple) and len(state) == 2:
        for part in state:
            if isinstance(part, dict):
                for key, value in part.items():
                    yield f".{key}", value
    elif isinstance(state, dict):
        for key, value in state.items():
            yield f".{key}", value
    elif state is not None:
        yield ".<state>", state
    for i, arg in enumerate(args or ()):
        if not isinstance(arg, type):
            yield f".<argument {i}>", arg
    if len(reduced) > 3 and reduced[3] is not None:
        for i, item in enumerate(reduced[3]):
            yield f"[{i}]", item
    if len(reduced) > 4 and reduced[4] is not None:
        for key, value in reduced[4]:
            yield f"[{key!r}]", value
