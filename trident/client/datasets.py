"""Published datasets and scheduler metadata: the client's side.

`DatasetMethods` gives `Client` `publish_dataset` and friends, which run the
coroutines here; `Datasets` is the dict-like ``client.datasets``. Dataset values are
stored values (see `stored`): futures inside keep their keys alive while published and
come back as futures of the reading client. Metadata is a tree of dicts with string
keys; other values are pickled leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from ..protocol.serialize import Serialized, dumps, loads
from .base import ClientBase
from .stored import pack, unpack

if TYPE_CHECKING:
    from .client import Client

#: Marks an argument that was not given (None is a valid default).
NO_DEFAULT: Any = object()


async def publish(client: Client, datasets: dict[str, Any], override: bool) -> None:
    """Store named values on the scheduler, all or none.

    Raises `KeyError` naming the datasets that exist already (unless `override`).
    """
    values = {name: pack(value, f"the dataset {name!r}") for name, value in datasets.items()}
    existing = await client._core.request(lambda rid: m.PublishDatasets(rid, values, override))
    if existing:
        raise KeyError(f"datasets already exist: {', '.join(existing)} (use override=True)")


async def unpublish(client: Client, names: list[str]) -> None:
    await client._core.request(lambda rid: m.UnpublishDataset(rid, names))


def dataset_name(name: Any) -> str:
    """`name` if it is a dataset name (a string); `TypeError` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"dataset names are strings, not {type(name).__name__} ({name!r})")
    return name


async def list_names(client: Client) -> list[str]:
    return list(await client._core.request(lambda rid: m.ListDatasets(rid)))


async def get(client: Client, name: str, default: Any = NO_DEFAULT) -> Any:
    """The dataset `name`; `default` if it does not exist, else `KeyError`."""
    found = await client._core.request(lambda rid: m.GetDataset(rid, name))
    if found is None:
        if default is NO_DEFAULT:
            raise KeyError(f"Dataset '{name}' not found")
        return default
    payload, keys, handoff = found
    return unpack(client, payload, keys, handoff)


def metadata_path(keys: Any) -> list[str]:
    """``"a"`` or ``["a", "b"]`` as a list of string keys; `TypeError` otherwise."""
    path = list(keys) if isinstance(keys, (list, tuple)) else [keys]
    for key in path:
        if not isinstance(key, str):
            raise TypeError(f"metadata keys are strings, not {type(key).__name__} ({key!r})")
    return path


def to_tree(value: Any) -> Any:
    """Dicts with string keys become nested dicts (so keys can walk into them); every
    other value is a pickled leaf."""
    if type(value) is dict and all(isinstance(key, str) for key in value):
        return {key: to_tree(item) for key, item in value.items()}
    return dumps(value)


def from_tree(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: from_tree(item) for key, item in tree.items()}
    if isinstance(tree, Serialized):
        return loads(tree)
    return tree


async def store_metadata(client: Client, keys: list[str], value: Any) -> None:
    tree = to_tree(value)
    await client._core.request(lambda rid: m.SetMetadata(rid, keys, tree))


async def read_metadata(client: Client, keys: list[str], default: Any = NO_DEFAULT) -> Any:
    """The metadata at `keys`; `default` if there is none, else `KeyError`."""
    found, tree = await client._core.request(lambda rid: m.GetMetadata(rid, keys))
    if not found:
        if default is NO_DEFAULT:
            raise KeyError(keys[-1] if len(keys) == 1 else keys)
        return default
    return from_tree(tree)


class Datasets(MutableMapping[str, Any]):
    """``client.datasets``: the published datasets as a dict (dask's ``Datasets``).

    ``client.datasets["name"]`` gets, ``client.datasets["name"] = value`` publishes
    (replacing an existing dataset) and ``del client.datasets["name"]`` unpublishes.
    With an asynchronous client, item access returns a coroutine and iteration is
    ``async for``; assigning, deleting and ``len`` need a blocking client (use
    `Client.publish_dataset`, `Client.unpublish_dataset` and `Client.list_datasets`).
    """

    __slots__ = ("_client",)

    def __init__(self, client: Client):
        self._client = client

    def __getitem__(self, name: str) -> Any:
        return self._client.get_dataset(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self._blocking("client.datasets[name] = value", "client.publish_dataset(name=value)")
        self._client.publish_dataset(value, name=name, override=True)

    def __delitem__(self, name: str) -> None:
        self._blocking("del client.datasets[name]", "client.unpublish_dataset(name)")
        if name not in self._client.list_datasets():
            raise KeyError(name)
        self._client.unpublish_dataset(name)

    def __iter__(self) -> Iterator[str]:
        self._blocking("iter(client.datasets)", "async for name in client.datasets")
        return iter(self._client.list_datasets())

    def __aiter__(self) -> AsyncIterator[str]:
        if not self._client.asynchronous:
            raise TypeError("use 'for' with the datasets of a blocking client")
        return self._names()

    async def _names(self) -> AsyncIterator[str]:
        for name in await self._client.list_datasets():
            yield name

    def __len__(self) -> int:
        self._blocking("len(client.datasets)", "len(await client.list_datasets())")
        return len(self._client.list_datasets())

    def __contains__(self, name: object) -> bool:
        self._blocking("name in client.datasets", "name in await client.list_datasets()")
        return name in self._client.list_datasets()

    def _blocking(self, what: str, instead: str) -> None:
        if self._client.asynchronous:
            raise TypeError(f"{what} needs a blocking client; use {instead!r} instead")


class DatasetMethods(ClientBase):
    """Mixed into `Client`: publishing datasets and reading and writing metadata."""

    @property
    def datasets(self) -> Datasets:
        """The published datasets as a dict: ``client.datasets["name"]`` (see `Datasets`)."""
        return Datasets(self)  # type: ignore[arg-type]

    def publish_dataset(
        self, *args: Any, name: str | None = None, override: bool = False, **kwargs: Any
    ) -> Any:
        """Publish values under names, for every client of the cluster to get.

        ``publish_dataset(value, name="x")``, ``publish_dataset(x=value, y=other)`` or
        ``publish_dataset({"x": value, "y": other})`` (several positional values with
        `name` are published together as a tuple). Futures inside stay alive while
        published. Raises `KeyError` if a name exists already, unless `override`;
        nothing is published then. Raises `TypeError` for a name that is not a string
        and `ValueError` for positional values without `name` other than one dict. A
        coroutine if asynchronous.
        """
        found = dict(kwargs)
        if name is not None:
            if not args:
                raise ValueError("publish_dataset(value, name='x') needs the value to publish")
            found[dataset_name(name)] = args[0] if len(args) == 1 else args
        elif args:
            if len(args) != 1 or not isinstance(args[0], Mapping):
                raise ValueError(
                    "publish_dataset without name= takes one {name: value} dict"
                    " (or publish_dataset(value, name='x'))"
                )
            for key, value in args[0].items():
                found[dataset_name(key)] = value
        return self._sync(publish, self, found, override)

    def unpublish_dataset(self, name: str | list[str]) -> Any:
        """Remove the dataset `name`, or each dataset of a list of names (those that
        exist). Raises `TypeError` for a name that is not a string. A coroutine if
        asynchronous."""
        names = list(name) if isinstance(name, (list, tuple, set)) else [name]
        return self._sync(unpublish, self, [dataset_name(n) for n in names])

    def list_datasets(self) -> Any:
        """The names of the published datasets, sorted; a coroutine if asynchronous."""
        return self._sync(list_names, self)

    def get_dataset(self, name: str, default: Any = NO_DEFAULT) -> Any:
        """The dataset `name`, with futures bound to this client.

        Returns `default` if there is no such dataset, else raises `KeyError`
        (`TypeError` for a name that is not a string). A coroutine if asynchronous.
        """
        return self._sync(get, self, dataset_name(name), default)

    def set_metadata(self, key: str | list[str], value: Any) -> Any:
        """Store a small value on the scheduler under `key` for any client to read.

        A list of keys walks nested dicts, creating them as needed:
        ``set_metadata(["a", "b"], 1)`` makes ``get_metadata("a") == {"b": 1}``. Keys
        are strings. A coroutine if asynchronous.
        """
        return self._sync(store_metadata, self, metadata_path(key), value)

    def get_metadata(self, keys: str | list[str], default: Any = NO_DEFAULT) -> Any:
        """The metadata at `keys` (a key or a list walking nested dicts).

        Returns `default` if there is none, else raises `KeyError`. A coroutine if
        asynchronous.
        """
        return self._sync(read_metadata, self, metadata_path(keys), default)
