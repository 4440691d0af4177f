"""`ActorLocation`: where an actor lives; the value stored under an actor's key."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def public_methods(cls: type) -> tuple[frozenset[str], frozenset[str]]:
    """(all public methods, the ``async def`` ones) of an actor class."""
    methods = set()
    async_methods = set()
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(cls, name)
        if isinstance(attribute, (staticmethod, classmethod)):
            attribute = attribute.__func__
        if isinstance(attribute, property) or not callable(attribute):
            continue
        methods.add(name)
        if inspect.iscoroutinefunction(attribute):
            async_methods.add(name)
    return frozenset(methods), frozenset(async_methods)


def public_attributes(obj: Any, methods: frozenset[str]) -> frozenset[str]:
    """The public names of `obj` (a class or an instance) that are not methods: class
    attributes and properties, and an instance's own attributes."""
    return frozenset(name for name in dir(obj) if not name.startswith("_")) - methods


class ActorLocation:
    """An actor's key, its worker and the shape of its class.

    This is what the cluster stores under the actor's key. Clients turn it into an
    `Actor` handle when they load it, and tasks on the same worker see a handle too
    (`__trident_local__`).
    """

    __slots__ = (
        "address",
        "async_methods",
        "attributes",
        "key",
        "max_restarts",
        "methods",
        "restarts",
        "type_name",
    )

    def __init__(
        self,
        key: str,
        address: str,
        type_name: str,
        methods: frozenset[str],
        async_methods: frozenset[str],
        max_restarts: int,
        restarts: int,
        attributes: frozenset[str] = frozenset(),
    ):
        self.key = key
        self.address = address
        self.type_name = type_name
        self.methods = methods
        self.async_methods = async_methods
        self.max_restarts = max_restarts
        self.restarts = restarts
        #: the public attributes the instance had when it started (for ``dir``)
        self.attributes = attributes

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            ActorLocation,
            (
                self.key,
                self.address,
                self.type_name,
                self.methods,
                self.async_methods,
                self.max_restarts,
                self.restarts,
                self.attributes,
            ),
        )

    def __trident_local__(self) -> Any:
        """The value user code sees: an `Actor` handle bound to the current client.

        Raises `RuntimeError` when no client code is loaded in this process.
        """
        if _to_handle is None:
            raise RuntimeError(f"no client here to call actor {self.key!r} through")
        return _to_handle(self)

    def __repr__(self) -> str:
        return f"<ActorLocation {self.type_name} {self.key!r} on {self.address}>"


#: Turns a location into an `Actor` handle; `trident.client.actor_handle` (above this
#: neutral module, which the worker imports too) registers it when it is imported.
_to_handle: Callable[[ActorLocation], Any] | None = None


def register_handle(to_handle: Callable[[ActorLocation], Any]) -> None:
    """Make `to_handle` what `ActorLocation.__trident_local__` returns."""
    global _to_handle
    _to_handle = to_handle
