"""User data <-> `Serialized` payloads: pickle protocol 5 with out-of-band buffers.

The scheduler's state machine never calls `loads`: payloads pass through it as opaque
bytes (only `Client.run_on_scheduler`, from an authenticated client, makes the
scheduler's actor load a function). Functions
are pickled once per process and cached (`dumps_function`); task arguments are pickled
with a pickler that replaces every `Future` it meets by a persistent id, which is how
dependencies are found anywhere inside arguments and how workers substitute the data.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import threading
import types
from collections import ChainMap, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import cloudpickle

#: Pickle buffers at least this large travel as their own frame; smaller ones are copied
#: into the pickle stream, where one more frame would cost more than the copy.
OUT_OF_BAND_MIN_BYTES = 2048

_PROTOCOL = 5

#: Function payloads up to this size are *kept*: a client defines each once and the
#: scheduler keeps it while that client is connected, so later tasks name it by token
#: alone. A larger payload (a callable object that carries data, such as a joblib
#: batch) is sent with every batch of tasks that use it and kept only while such tasks
#: exist, so that a stream of distinct large callables does not pile up on the client,
#: the scheduler and the workers. See `is_kept_function`.
KEPT_FUNCTION_MAX_BYTES = 64 * 1024


class Serialized:
    """A pickled object: the pickle stream (`header`) and its out-of-band `buffers`.

    Instances are immutable by convention and cheap to pass around; `nbytes` is the total
    size on the wire. Equality compares content, which keeps messages comparable in tests.
    """

    __slots__ = ("buffers", "header")

    def __init__(self, header: bytes | memoryview, buffers: list[memoryview] | None = None):
        self.header = header
        self.buffers = buffers if buffers is not None else []

    @property
    def nbytes(self) -> int:
        return len(self.header) + sum(b.nbytes for b in self.buffers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Serialized):
            return NotImplemented
        return bytes(self.header) == bytes(other.header) and [bytes(b) for b in self.buffers] == [
            bytes(b) for b in other.buffers
        ]

    def __hash__(self) -> int:
        return hash(bytes(self.header))

    def __repr__(self) -> str:
        return f"<Serialized {self.nbytes} bytes, {len(self.buffers)} buffers>"


def _buffer_collector(buffers: list[memoryview]) -> Callable[[pickle.PickleBuffer], bool]:
    def collect(buf: pickle.PickleBuffer) -> bool:
        view = buf.raw()
        if view.nbytes < OUT_OF_BAND_MIN_BYTES:
            return True  # serialize in-band
        buffers.append(view)
        return False

    return collect


def _code_reduce_keeping_file(code: types.CodeType) -> tuple[Any, ...]:
    """cloudpickle's reduction of a code object, with its file name kept: cloudpickle
    writes ``<dynamic-code>`` (for payloads that do not depend on where a function was
    defined), which would leave tracebacks of functions defined in a script without
    their file and line."""
    constructor, args = cloudpickle.cloudpickle._code_reduce(code)
    return _code_in_file, (constructor, args, code.co_filename)


def _code_in_file(constructor: Callable[..., types.CodeType], args: tuple, filename: str) -> Any:
    """Rebuild a code object pickled by `_code_reduce_keeping_file`."""
    return constructor(*args).replace(co_filename=filename)


class _Pickler(cloudpickle.Pickler):
    """cloudpickle's pickler, keeping the file names of code it ships by value."""

    dispatch_table = ChainMap(
        {types.CodeType: _code_reduce_keeping_file}, cloudpickle.Pickler.dispatch_table
    )


def _cloudpickle_dumps(obj: object, buffers: list[memoryview]) -> bytes:
    file = io.BytesIO()
    _Pickler(file, protocol=_PROTOCOL, buffer_callback=_buffer_collector(buffers)).dump(obj)
    return file.getvalue()


def _needs_cloudpickle(header: bytes) -> bool:
    # pickle stores functions and classes of __main__ by reference, which only resolves in
    # the process that made them; cloudpickle ships them by value instead.
    return b"__main__" in header


def dumps(obj: object) -> Serialized:
    """Serialize `obj`; large buffers (numpy arrays, PickleBuffer) stay out of band.

    Plain pickle is tried first for speed; objects it cannot handle (lambdas, local
    classes, anything defined in `__main__`) go through cloudpickle. Raises the pickling
    error of cloudpickle when neither works.
    """
    buffers: list[memoryview] = []
    try:
        header = pickle.dumps(obj, protocol=_PROTOCOL, buffer_callback=_buffer_collector(buffers))
        if not _needs_cloudpickle(header):
            return Serialized(header, buffers)
    except Exception:
        pass
    buffers = []
    return Serialized(_cloudpickle_dumps(obj, buffers), buffers)


def loads(payload: Serialized) -> Any:
    """Deserialize a payload made by `dumps` (or by `dumps_task_args` without futures)."""
    return pickle.loads(payload.header, buffers=payload.buffers)


# --- task arguments -------------------------------------------------------------------


class _FutureRefPickler(pickle.Pickler):
    """Pickler that records `Future` objects as persistent ids naming their key."""

    future_type: type = type(None)
    key_attribute = "key"

    def __init__(self, file: io.BytesIO, buffers: list[memoryview]):
        super().__init__(file, protocol=_PROTOCOL, buffer_callback=_buffer_collector(buffers))
        self.dependencies: dict[str, None] = {}

    def persistent_id(self, obj: object) -> str | None:
        if isinstance(obj, self.future_type):
            key: str = getattr(obj, self.key_attribute)
            self.dependencies[key] = None
            return key
        return None


class _CloudFutureRefPickler(_Pickler):
    """The cloudpickle flavour of `_FutureRefPickler`."""

    future_type: type = type(None)
    key_attribute = "key"

    def __init__(self, file: io.BytesIO, buffers: list[memoryview]):
        super().__init__(file, protocol=_PROTOCOL, buffer_callback=_buffer_collector(buffers))
        self.dependencies: dict[str, None] = {}

    def persistent_id(self, obj: object) -> str | None:
        if isinstance(obj, self.future_type):
            key: str = getattr(obj, self.key_attribute)
            self.dependencies[key] = None
            return key
        return None


_ATOMIC_TYPES = frozenset({int, float, str, bytes, bool, type(None), complex})


def register_future_type(future_type: type) -> None:
    """Tell the argument pickler which class is a future (set once by the client
    package). Its instances' attribute named by the class's ``_wire_key_attribute``
    (default ``key``) holds the key as it travels."""
    key_attribute = getattr(future_type, "_wire_key_attribute", "key")
    for pickler in (_FutureRefPickler, _CloudFutureRefPickler):
        pickler.future_type = future_type
        pickler.key_attribute = key_attribute


def dumps_task_args(args: tuple, kwargs: Mapping[str, Any]) -> tuple[Serialized, list[str]]:
    """Pickle `(args, kwargs)` and return the payload and the keys of the futures inside.

    Futures may sit anywhere in the arguments, inside containers or other objects; each is
    replaced by its key. Raises whatever the pickler raises for unpicklable arguments.
    """
    value = (args, kwargs)
    if all(type(a) in _ATOMIC_TYPES for a in args) and all(
        type(v) in _ATOMIC_TYPES for v in kwargs.values()
    ):
        return Serialized(pickle.dumps(value, protocol=_PROTOCOL)), []
    for pickler_type in (_FutureRefPickler, _CloudFutureRefPickler):
        buffers: list[memoryview] = []
        file = io.BytesIO()
        pickler = pickler_type(file, buffers)
        try:
            pickler.dump(value)
        except Exception:
            if pickler_type is _CloudFutureRefPickler:
                raise
            continue
        header = file.getvalue()
        if pickler_type is _FutureRefPickler and _needs_cloudpickle(header):
            continue
        return Serialized(header, buffers), list(pickler.dependencies)
    raise AssertionError("unreachable")


class _DataUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, buffers: Iterable[Any], data: Mapping[str, Any]):
        super().__init__(file, buffers=buffers)
        self._data = data

    def persistent_load(self, pid: Any) -> Any:
        value = self._data[pid]
        # A stored value may appear differently to user code (an actor's location is
        # handed to tasks as an actor handle).
        hook = getattr(type(value), "__trident_local__", None)
        return hook(value) if hook is not None else value


def loads_task_args(payload: Serialized, data: Mapping[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """Inverse of `dumps_task_args`: each future's key is replaced by `data[key]`."""
    unpickler = _DataUnpickler(io.BytesIO(payload.header), payload.buffers, data)
    args, kwargs = unpickler.load()
    return args, kwargs


# --- functions --------------------------------------------------------------------------


def is_kept_function(payload: Serialized) -> bool:
    """Whether a function `payload` is defined once per client and kept while the client
    is connected (small payloads), rather than sent with each batch of tasks using it
    and forgotten with them (payloads over `KEPT_FUNCTION_MAX_BYTES`)."""
    return payload.nbytes <= KEPT_FUNCTION_MAX_BYTES


class _FunctionCache:
    """A bounded, thread-safe map from function objects to their payload and token.

    Only kept functions (`is_kept_function`) are cached: caching a large callable would
    keep it and its payload alive in the client for as long as the cache remembers it.
    """

    def __init__(self, capacity: int = 2000):
        self._capacity = capacity
        self._entries: OrderedDict[Any, tuple[Serialized, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, func: Callable) -> tuple[Serialized, str]:
        try:
            with self._lock:
                entry = self._entries.get(func)
        except TypeError:  # unhashable callable: pickle each time
            return _pickle_function(func)
        if entry is None:
            entry = _pickle_function(func)
            if not is_kept_function(entry[0]):
                return entry
            with self._lock:
                self._entries[func] = entry
                if len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
        return entry


def _pickle_function(func: Callable) -> tuple[Serialized, str]:
    payload = dumps(func)
    # The out-of-band buffers count too: callables that differ only in the arrays they
    # carry (``partial(np.sum, a)``, ``partial(np.sum, b)``) pickle to the same header.
    digest = hashlib.blake2b(payload.header, digest_size=12)
    for buffer in payload.buffers:
        digest.update(buffer)
    return payload, digest.hexdigest()


_function_cache = _FunctionCache()


def dumps_function(func: Callable) -> tuple[Serialized, str]:
    """Pickle a function (once per process, if its payload is small); return its payload
    and a content token."""
    return _function_cache.get(func)


def token_of(*parts: bytes | memoryview | str) -> str:
    """A short hex digest over byte strings, used for deterministic task keys."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        h.update(size.to_bytes(8, "little"))  # so ("a", "b") and ("ab",) differ
        h.update(data)
    return h.hexdigest()


# --- sizes -----------------------------------------------------------------------------


def sizeof(obj: object) -> int:
    """Estimate the memory an object holds, in bytes (buffers counted, not headers).

    Exact for bytes-like objects and numpy arrays; containers are sampled so the cost
    stays bounded for huge lists.
    """
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(obj, (bytes, bytearray, str)):
        return sys.getsizeof(obj)
    if isinstance(obj, (list, tuple, set, frozenset)):
        n = len(obj)
        if n == 0:
            return sys.getsizeof(obj)
        sample = obj if n <= 10 else list(obj)[:10]
        per_item = sum(sizeof(x) for x in sample) / len(sample)
        return sys.getsizeof(obj) + int(per_item * n)
    if isinstance(obj, dict):
        n = len(obj)
        items = list(obj.items())[:10]
        if not items:
            return sys.getsizeof(obj)
        per_item = sum(sizeof(k) + sizeof(v) for k, v in items) / len(items)
        return sys.getsizeof(obj) + int(per_item * n)
    dask_sizeof = sys.modules.get("dask.sizeof")
    if dask_sizeof is not None:
        # dask's estimates for pandas, pyarrow and friends sample object columns rather
        # than measuring every string (pandas' own deep size does), at a third of the cost
        try:
            return int(dask_sizeof.sizeof(obj))
        except Exception:
            pass
    try:
        return sys.getsizeof(obj)
    except TypeError:
        return 64
