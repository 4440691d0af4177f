"""`GraphMethods`: the `Client` methods for task graphs and dask collections.

`get` runs a graph (see `graphs`). `compute`, `persist` and `normalize_collection`
follow the dask collection protocol, so dask.delayed, dask.array, dask.bag and
dask.dataframe run on trident; they need dask (``pip install trident[dask]``), never
``distributed``. The client that becomes the default also becomes dask's scheduler
(`use_as_dask_scheduler`), so ``x.compute()`` and ``x.persist()`` run on it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..protocol.serialize import Serialized
from ..shuffle import shuffle_graph
from .annotations import Annotations, active_annotations
from .future import FINISHED, PENDING, Future
from .graphs import GraphPlan, as_graph, dask_priorities, flatten_keys, map_keys, trident_key
from .placement import GraphPlacement, collection_output_keys, for_collections, for_graph
from .results import ResultMethods
from .task_specs import TaskOptions, pickle_function, task_spec

if TYPE_CHECKING:
    from .client import Client
    from .executor import ClientExecutor

_DASK_EXTRA = "dask collections need dask: pip install 'trident[dask]'"


def _dask() -> Any:
    try:
        import dask
    except ImportError as exc:
        raise ImportError(_DASK_EXTRA) from exc
    return dask


def is_dask_collection(value: Any) -> bool:
    return hasattr(value, "__dask_graph__") and not isinstance(value, type)


class GraphMethods(ResultMethods):
    """Mixed into `Client`: graphs, dask collections and the executor (see the module)."""

    # --- raw graphs ------------------------------------------------------------------

    def get(
        self,
        dsk: Any,
        keys: Any,
        restrictions: Any = None,
        loose_restrictions: Any = None,
        resources: Any = None,
        sync: bool = True,
        asynchronous: bool | None = None,
        direct: bool | None = None,
        retries: int | None = None,
        priority: int = 0,
        fifo_timeout: Any = None,
        actors: Any = None,
        workers: Any = None,
        allow_other_workers: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Compute the values of `keys` in the task graph `dsk`.

        `dsk` maps keys (strings or tuples such as ``("x", 0)``) to values: a task
        ``(callable, *args)`` whose arguments may name other keys (also inside lists
        and tuples) or hold nested tasks, another key (an alias), a `Future`, or a
        literal. dask's graphs of ``Task``/``Alias``/``DataNode`` objects and objects
        with ``__dask_graph__`` work too. `keys` is a key or a nested list of keys; the
        result has its shape. With ``sync=False`` the futures are returned instead of
        the values (in that shape). `restrictions` maps keys to the workers they may run
        on (`loose_restrictions`: keys that may run elsewhere too); `resources` maps keys
        to the resources they need, or is one dict for every task. `workers`,
        `allow_other_workers`, `retries` and `priority` apply to every task, as in
        `submit`. The graph reaches the scheduler as one submission. A coroutine for
        asynchronous clients when ``sync=True``. Raises `TypeError` for `restrictions`
        that are not a dict.
        """
        options = self._graph_options(workers, allow_other_workers, None, retries, priority)
        placement = for_graph(options, restrictions, loose_restrictions, resources)
        futures = self._submit_graph(*self._graph_with_shuffles(dsk, placement), keys)
        if not sync:
            return futures
        return self.gather(futures)

    def _graph_options(
        self,
        workers: Any,
        allow_other_workers: bool,
        resources: dict[str, float] | None,
        retries: int | None,
        priority: int,
    ) -> TaskOptions:
        return TaskOptions(priority, retries, workers, allow_other_workers, resources)

    def _graph_with_shuffles(
        self, dsk: Any, placement: GraphPlacement
    ) -> tuple[Mapping[Any, Any], GraphPlacement]:
        """The graph of `dsk` and where its tasks run: a dask expression's task-based
        dataframe shuffles and dask.array's staged rechunks become trident's
        worker-to-worker shuffle and rechunk (`trident.shuffle`), whose output tasks
        are placed, loosely, on the workers that own them."""
        replaced = None
        active = active_annotations()
        if "dask" in sys.modules and (active or hasattr(dsk, "__dask_graph__")):
            placement = placement.with_annotations(
                Annotations.of(dsk, lambda: as_graph(dsk).keys(), trident_key, active)
            )
        if "dask" in sys.modules:
            threads = {address: info.nthreads for address, info in self._core.workers.items()}
            replaced = shuffle_graph(dsk, threads)
        if replaced is None:
            return as_graph(dsk), placement
        return replaced.graph, placement.with_owners(replaced.owners)

    def _submit_graph(self, graph: Any, placement: GraphPlacement, keys: Any) -> Any:
        """Submit the tasks of `graph` as one `UpdateGraph`; return futures for `keys`
        (in their shape)."""
        self._check_open()
        plan = GraphPlan(graph, self._core.futures)
        wanted = list(flatten_keys(keys))
        for key in wanted:
            if key not in plan.names:
                raise KeyError(f"{key!r} is not a key of the graph")
        specs = []
        functions: dict[str, Serialized] = {}
        linked = any(task.dependencies for task in plan.tasks.values())
        # dask's ordering only matters where tasks feed others (and costs ~0.1 ms per
        # task): independent tasks run in the order the graph lists them
        for task in plan.order(dask_priorities(graph, plan.names) if linked else None):
            payload, token = pickle_function(task.function)
            functions[token] = payload
            options = placement.options_for(task.key)
            specs.append(task_spec(task.function, token, task.args, {}, task.key, True, options))
        states = self._core.add_tasks(specs, functions)
        self._register_submitted([spec.key for spec in specs])
        futures = {
            spec.key: Future._adopt(spec.key, self, state)  # type: ignore[arg-type]
            for spec, state in zip(specs, states, strict=True)
        }
        client: Any = self
        aliases = self._graph_aliases()

        def future_of(key: Any) -> Future:
            name = plan.names[key]
            if name != trident_key(key):
                aliases[trident_key(key)] = name
            found = futures.get(name)
            return found if found is not None else Future._attach(name, client)

        return map_keys(keys, future_of)

    def _graph_aliases(self) -> dict[str, str]:
        """Requested graph keys that named another key (dask's fused tasks leave such
        aliases), for `normalize_collection`; entries whose key was released go."""
        aliases: dict[str, str] = self.__dict__.setdefault("_aliases_of_graph_keys", {})
        if len(aliases) > 1000:
            held = self._core.futures
            for alias, name in list(aliases.items()):
                if name not in held:
                    del aliases[alias]
        return aliases

    # --- dask collections ----------------------------------------------------------------

    def _dask_scheduler(self, placement: GraphPlacement) -> Callable[..., Any]:
        """A dask ``get`` that submits a graph and returns futures instead of values."""

        def submit_graph(dsk: Any, keys: Any, **kwargs: Any) -> Any:
            return self._submit_graph(*self._graph_with_shuffles(dsk, placement), keys)

        return submit_graph

    def compute(
        self,
        collections: Any,
        sync: bool = False,
        optimize_graph: bool = True,
        workers: Any = None,
        allow_other_workers: Any = False,
        resources: dict[str, float] | None = None,
        retries: int | None = None,
        priority: int = 0,
        fifo_timeout: Any = None,
        actors: Any = None,
        traverse: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Start computing dask collections on the cluster; return a `Future` of each
        one's final value (its result as ``dask.compute`` gives it).

        `collections` is a collection or a list/tuple of them (other items pass through
        unchanged; with `traverse`, collections inside them are found too). With
        ``sync=True`` the values are returned instead (a coroutine for asynchronous
        clients). `optimize_graph` applies dask's optimizations first. `workers` is a
        worker or a list (the collections' outputs run there, the tasks they need
        anywhere) or a dict from (tuples of) collections or keys to workers;
        `allow_other_workers` is True or a list of collections whose restrictions are
        loose. `resources`, `retries` and `priority` apply to every task, as in
        `submit`. Needs dask.
        """
        placement = (workers, allow_other_workers, resources, retries, priority)
        value = self._through_dask(
            _dask().compute,
            collections,
            *placement,
            optimize_graph=optimize_graph,
            traverse=traverse,
        )
        if sync:
            return self.gather(value)
        return value

    def persist(
        self,
        collections: Any,
        optimize_graph: bool = True,
        workers: Any = None,
        allow_other_workers: Any = False,
        resources: dict[str, float] | None = None,
        retries: int | None = None,
        priority: int = 0,
        fifo_timeout: Any = None,
        actors: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Start computing dask collections and return equivalent collections whose
        tasks are futures: computing them later reuses what the cluster holds.

        `collections` is a collection or a list/tuple of them; the result has the same
        shape. Returns at once (the work goes on). The other arguments are those of
        `compute`. Needs dask.
        """
        placement = (workers, allow_other_workers, resources, retries, priority)
        return self._through_dask(
            _dask().persist, collections, *placement, optimize_graph=optimize_graph, traverse=False
        )

    def _through_dask(
        self,
        run: Callable[..., Any],
        collections: Any,
        workers: Any,
        allow_other_workers: Any,
        resources: dict[str, float] | None,
        retries: int | None,
        priority: int,
        **options: Any,
    ) -> Any:
        """``run(*collections, **options)`` (``dask.compute`` or ``dask.persist``) with
        this client as the scheduler, placing tasks as `compute` says: one result for
        one collection, else a list."""
        single = is_dask_collection(collections)
        items = [collections] if single else list(collections)
        base = self._graph_options(None, False, resources, retries, priority)
        outputs = [item for item in items if is_dask_collection(item)]
        where = for_collections(base, outputs, workers, allow_other_workers, collection_output_keys)
        results = run(*items, scheduler=self._dask_scheduler(where), **options)
        return results[0] if single else list(results)

    def normalize_collection(self, collection: Any) -> Any:
        """`collection` with each task whose key this client already holds a future for
        replaced by that future, so computing it reuses the cluster's work.

        Returns the collection itself when nothing is replaced.
        """
        graph = as_graph(collection)
        futures = self._core.futures
        aliases = self._graph_aliases()
        replaced = {}
        client: Any = self
        for key in graph:
            name = trident_key(key)
            name = aliases.get(name, name)
            state = futures.get(name)
            if state is not None and state.status in (PENDING, FINISHED):
                replaced[key] = Future._attach(name, client)
        if not replaced:
            return collection
        rebuild, arguments = collection.__dask_postpersist__()
        return rebuild({**graph, **replaced}, *arguments)

    def get_executor(self, **kwargs: Any) -> ClientExecutor:
        """A `concurrent.futures.Executor` that runs its calls on this client.

        `kwargs` (``workers``, ``resources``, ``retries``, ``pure``, ...) apply to every
        task it submits; ``pure`` defaults to False, so each call runs.
        """
        from .executor import ClientExecutor

        client: Client = self  # type: ignore[assignment]
        return ClientExecutor(client, **kwargs)


# --- dask's default scheduler -----------------------------------------------------------

_dask_settings: Any = None
_dask_lock = threading.Lock()
#: the client to make dask's scheduler once dask is imported (see `_WhenDaskLoads`)
_waiting_client: Any = None


def use_as_dask_scheduler(client: Any) -> None:
    """Make `client` dask's scheduler (None: give dask back its previous settings).

    Called when a client becomes (or stops being) the default client. While set,
    ``x.compute()`` runs on the client and dask.dataframe shuffles with tasks (its
    other methods need ``distributed``). If dask is not imported yet, this happens when
    it is: creating a client never imports dask itself.
    """
    global _dask_settings, _waiting_client
    config: Any = None
    if client is not None and "dask" in sys.modules:
        # Outside the lock: this may wait for another thread that is importing dask.
        import dask.config as config
    with _dask_lock:
        if _dask_settings is not None:
            settings, _dask_settings = _dask_settings, None
            settings.__exit__(None, None, None)
        _waiting_client = None
        _name_as_distributed(client is not None and config is not None)
        if client is None:
            return
        if config is None:
            _waiting_client = client
            _WhenDaskLoads.install()
            return
        _dask_settings = config.set({"scheduler": client, "dataframe.shuffle.method": "tasks"})


#: the names dask gives its distributed scheduler (``compute(scheduler="distributed")``)
_DISTRIBUTED_NAMES = ("distributed", "dask.distributed")


def _default_client_get(*args: Any, **kwargs: Any) -> Any:
    """dask's scheduler function under the names ``"distributed"`` and
    ``"dask.distributed"``: the `Client.get` of the client to use here."""
    from .worker_client import get_client

    client = get_client()
    if client.asynchronous:
        raise RuntimeError(
            "Attempting to use an asynchronous Client in a synchronous context of `dask.compute`"
        )
    return client.get(*args, **kwargs)


def _name_as_distributed(on: bool) -> None:
    """Make dask's scheduler names ``"distributed"``/``"dask.distributed"`` mean the
    default trident client (`on`), or give them back to dask (its distributed Client,
    if any). Needs dask imported when `on`."""
    base = sys.modules.get("dask.base")
    if base is None and on:
        import dask.base as base
    named = getattr(base, "named_schedulers", None)
    if not isinstance(named, dict):
        return
    for name in _DISTRIBUTED_NAMES:
        if on:
            named[name] = _default_client_get
        elif named.get(name) is _default_client_get:
            del named[name]


def _dask_loaded() -> None:
    client = _waiting_client
    if client is not None and client.status not in ("closing", "closed"):
        use_as_dask_scheduler(client)


class _WhenDaskLoads(importlib.abc.MetaPathFinder):
    """Calls `_dask_loaded` right after ``import dask`` finishes, once."""

    _installed = False

    @classmethod
    def install(cls) -> None:
        if not cls._installed:
            cls._installed = True
            sys.meta_path.insert(0, cls())

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "dask":
            return None
        sys.meta_path.remove(self)
        type(self)._installed = False
        spec = importlib.util.find_spec(name)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            _dask_loaded()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
