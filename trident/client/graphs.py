"""Task graphs -> trident tasks: `Client.get` and the dask collection protocol.

A graph maps keys to values. Two flavours are understood:

- **raw graphs** (dask's classic format): a value is a task ``(callable, *args)``, a
  reference to another key (an alias), a `Future`, or any other value (a literal).
  Arguments may hold keys (replaced by their values), nested tasks (run inside their
  parent) and lists or tuples of those.
- **dask graphs** of ``dask._task_spec`` nodes (what dask collections produce):
  ``Task`` nodes run as they are with the values of their dependencies, ``Alias``
  nodes name another key, ``DataNode`` nodes are literals (or futures).

Keys may be strings, bytes, numbers or tuples (``("x", 0)``); each travels as its
reversible string form (`trident._keys.encode_key`: a tuple key as its ``repr``, whose
prefix for the dashboard and statistics is the name's), and futures of the graph
carry the key itself. Aliases and futures need no task: they name the key they refer to. Every task
becomes one `TaskSpec`, and the whole graph is submitted as one `UpdateGraph`, in an
order where dependencies come first (dask's own ordering when dask is installed).
"""

from __future__ import annotations

import functools
import heapq
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from .._keys import encode_key
from .delayed_graphs import delayed_graph
from .future import _UNDECODED, Future
from .graph_tasks import Call, evaluate, identity, run_node


class KeyReference(Future):
    """Stands for a key inside task arguments: pickled as a dependency, never a real
    future (it holds no reference on the cluster)."""

    __slots__ = ()

    def __init__(self, key: str):
        self._key = key
        # decoded only when asked (`Future.key`): a shuffle's graph holds thousands
        self._user_key = _UNDECODED

    def __del__(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<KeyReference {self._key}>"


def trident_key(key: Hashable) -> str:
    """The wire key of a graph key (see the module docstring): `encode_key`, so the
    futures of the graph's keys have those keys, with their types. A key of another
    type (dask refuses those) travels as the string of its ``repr``."""
    try:
        return encode_key(key)
    except TypeError:
        return encode_key(repr(key))


def is_task(value: Any) -> bool:
    """Whether `value` is a raw-graph task: a tuple whose first item is callable."""
    return type(value) is tuple and bool(value) and callable(value[0])


def _graph_node_type() -> Any:
    """dask's graph node class, when dask (and a collection using it) is loaded."""
    module = sys.modules.get("dask._task_spec")
    return getattr(module, "GraphNode", None)


class _NotDirect(Exception):
    """A dask task's argument that only the task node itself can evaluate."""


@functools.cache
def _direct_kinds() -> tuple[Any, ...]:
    """dask's ``Task``, ``TaskRef``, ``DataNode``, its container nodes (each with the
    Python type it builds) and ``GraphNode``."""
    from dask import _task_spec as spec

    containers = {spec.List: list, spec.Tuple: tuple, spec.Set: set}
    return spec.Task, spec.TaskRef, spec.DataNode, containers, spec.GraphNode


class TaskPlan:
    """One task to submit: its key, function, arguments and dependencies (trident keys)."""

    __slots__ = ("args", "dependencies", "function", "key")

    def __init__(self, key: str, function: Callable[..., Any], args: tuple, dependencies: set[str]):
        self.key = key
        self.function = function
        self.args = args
        self.dependencies = dependencies


class GraphPlan:
    """The tasks of a graph, the keys that name other keys, and the submission order.

    `existing` names the keys the client already holds futures for (a graph may
    depend on them, as persisted collections do). Raises `KeyError` for a dependency
    that is neither in the graph nor existing, and `ValueError` for a cycle.
    """

    def __init__(self, graph: Mapping[Any, Any], existing: Mapping[str, Any]):
        self._graph = graph
        self._existing = existing
        self._node_type = _graph_node_type()
        #: graph key -> trident key, for every key (aliases name their target's key)
        self.names: dict[Any, str] = {}
        self.tasks: dict[str, TaskPlan] = {}
        self._aliases: dict[Any, Any] = {}
        for key, value in graph.items():
            self._classify(key, value)
        for key in self._aliases:
            self.names[key] = self._resolve_alias(key)
        for key, value in graph.items():
            if key not in self._aliases:
                self._plan(key, value)

    # --- what each value is ------------------------------------------------------------

    def _classify(self, key: Any, value: Any) -> None:
        node_type = self._node_type
        if node_type is not None and isinstance(value, node_type):
            kind = type(value).__name__
            if kind == "Alias":
                if value.target != key:
                    self._aliases[key] = value.target
                    return
            elif kind == "DataNode" and isinstance(value.value, Future):
                self._aliases[key] = _FutureTarget(value.value._key)
                return
        elif isinstance(value, Future):
            self._aliases[key] = _FutureTarget(value._key)
            return
        elif not is_task(value) and _hashable(value) and value in self._graph and value != key:
            self._aliases[key] = value
            return
        self.names[key] = trident_key(key)

    def _resolve_alias(self, key: Any) -> str:
        seen = {key}
        target = self._aliases[key]
        while True:
            if isinstance(target, _FutureTarget):
                return target.key
            if target in self._aliases:
                if target in seen:
                    raise ValueError(f"the graph's aliases form a cycle through {key!r}")
                seen.add(target)
                target = self._aliases[target]
                continue
            if target in self._graph:
                return trident_key(target)
            return self._external(target, key)

    def _external(self, target: Any, referrer: Any) -> str:
        """A key outside the graph: one the client holds a future for."""
        name = trident_key(target)
        if name in self._existing:
            return name
        raise KeyError(
            f"{referrer!r} refers to {target!r}, which is neither in the graph nor known"
        )

    def _name(self, key: Any, referrer: Any) -> str:
        found = self.names.get(key)
        return found if found is not None else self._external(key, referrer)

    # --- tasks ---------------------------------------------------------------------------

    def _plan(self, key: Any, value: Any) -> None:
        name = self.names[key]
        if self._node_type is not None and isinstance(value, self._node_type):
            if type(value).__name__ == "DataNode":
                self.tasks[name] = TaskPlan(name, identity, (value.value,), set())
                return
            direct = self._direct_call(value, key)
            if direct is not None:
                self.tasks[name] = direct
                return
            references = {dep: KeyReference(self._name(dep, key)) for dep in value.dependencies}
            needed = {ref._key for ref in references.values()}
            self.tasks[name] = TaskPlan(name, run_node, (value, references), needed)
            return
        dependencies: set[str] = set()
        nested = [False]
        if is_task(value):
            function = value[0]
            args = tuple(self._argument(arg, key, dependencies, nested) for arg in value[1:])
            if nested[0]:
                function, args = evaluate, (Call(value[0], args),)
        else:
            converted = self._argument(value, key, dependencies, nested)
            function, args = (evaluate if nested[0] else identity), (converted,)
        self.tasks[name] = TaskPlan(name, function, args, dependencies)

    def _direct_call(self, node: Any, key: Any) -> TaskPlan | None:
        """The plan of a dask ``Task`` that calls its function directly, without the
        node: its references to other keys (also inside dask's list, tuple and set
        nodes) become arguments that travel as dependencies, literals stay. Then the
        function is pickled once per submission rather than inside every task (by value,
        for a function of ``__main__``), and the worker calls it as it calls a submitted
        function. None for what only the node can run: keyword arguments, nested tasks,
        dictionaries and subclasses of ``Task``."""
        kinds = _direct_kinds()
        if type(node) is not kinds[0] or node.kwargs:
            return None
        dependencies: set[str] = set()
        try:
            args = tuple(self._direct_argument(arg, key, dependencies, kinds) for arg in node.args)
        except _NotDirect:
            return None
        return TaskPlan(self.names[key], node.func, args, dependencies)

    def _direct_argument(
        self, arg: Any, key: Any, dependencies: set[str], kinds: tuple[Any, ...]
    ) -> Any:
        _task, task_ref, data_node, containers, graph_node = kinds
        kind = type(arg)
        if kind is task_ref:
            name = self._name(arg.key, key)
            dependencies.add(name)
            return KeyReference(name)
        if kind is data_node:
            if isinstance(arg.value, Future):
                raise _NotDirect
            return arg.value
        container = containers.get(kind)
        if container is not None:
            return container(
                self._direct_argument(item, key, dependencies, kinds) for item in arg.args
            )
        if isinstance(arg, (graph_node, Future)):
            raise _NotDirect
        return arg

    def _argument(self, arg: Any, key: Any, dependencies: set[str], nested: list[bool]) -> Any:
        """`arg` with keys replaced by references and nested tasks by `Call`s."""
        if is_task(arg):
            nested[0] = True
            return Call(
                arg[0], tuple(self._argument(a, key, dependencies, nested) for a in arg[1:])
            )
        kind = type(arg)
        if kind is list:
            return [self._argument(a, key, dependencies, nested) for a in arg]
        if _hashable(arg) and arg in self._graph:
            name = self.names[arg]
            dependencies.add(name)
            return KeyReference(name)
        if kind is tuple:
            return tuple(self._argument(a, key, dependencies, nested) for a in arg)
        if isinstance(arg, Future):
            dependencies.add(arg._key)
        return arg

    # --- order ---------------------------------------------------------------------------

    def order(self, priorities: Mapping[str, int] | None = None) -> list[TaskPlan]:
        """The tasks with every dependency first; among ready tasks, lowest priority
        first (graph order when `priorities` is None)."""
        rank = priorities or {}
        position = {name: i for i, name in enumerate(self.tasks)}
        waiting_on: dict[str, int] = {}
        dependents: dict[str, list[str]] = {}
        ready: list[tuple[int, int, str]] = []
        for name, task in self.tasks.items():
            inside = [dep for dep in task.dependencies if dep in self.tasks]
            waiting_on[name] = len(inside)
            for dep in inside:
                dependents.setdefault(dep, []).append(name)
            if not inside:
                ready.append((rank.get(name, 0), position[name], name))
        heapq.heapify(ready)
        ordered = []
        while ready:
            _, _, name = heapq.heappop(ready)
            ordered.append(self.tasks[name])
            for dependent in dependents.get(name, ()):
                waiting_on[dependent] -= 1
                if not waiting_on[dependent]:
                    heapq.heappush(ready, (rank.get(dependent, 0), position[dependent], dependent))
        if len(ordered) != len(self.tasks):
            stuck = sorted(name for name, n in waiting_on.items() if n)[:5]
            raise ValueError(f"the graph has a cycle through {stuck}")
        return ordered


class _FutureTarget:
    """An alias target that is a future's key (already a trident key)."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def as_graph(dsk: Any) -> Mapping[Any, Any]:
    """The mapping of a graph: a dict, a dask HighLevelGraph, or anything with
    ``__dask_graph__`` (dask expressions and collections)."""
    if hasattr(dsk, "__dask_graph__"):
        culled = delayed_graph(dsk)
        dsk = culled if culled is not None else dsk.__dask_graph__()
    if not isinstance(dsk, Mapping):
        raise TypeError(f"expected a task graph (a mapping of keys), got {type(dsk).__name__}")
    return dsk


def dask_priorities(graph: Mapping[Any, Any], names: Mapping[Any, str]) -> dict[str, int] | None:
    """dask's static ordering of the graph (good for memory), when dask is installed."""
    try:
        from dask.order import order
    except ImportError:
        return None
    try:
        ranks = order(dict(graph))
    except Exception:
        return None  # a graph dask cannot order still runs, in graph order
    return {names[key]: rank for key, rank in ranks.items() if key in names}


def map_keys(keys: Any, convert: Callable[[Any], Any]) -> Any:
    """`keys` (a key, or nested lists of keys) with each key converted."""
    if type(keys) is list:
        return [map_keys(k, convert) for k in keys]
    return convert(keys)


def flatten_keys(keys: Any) -> Iterable[Any]:
    if type(keys) is list:
        for k in keys:
            yield from flatten_keys(k)
    else:
        yield keys
