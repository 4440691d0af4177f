"""`ActorLocation`: where an actor lives; the value stored under an actor's key."""

from __future__ import annotations

import inspect
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


class ActorLocation:
    """An actor's key, its worker and the shape of its class.

    This is what the cluster stores under the actor's key. Clients turn it into an
    `Actor` handle when they load it, and tasks on the same worker see a handle too
    (`__trident_local__`).
    """

    __slots__ = (
        "address",
        "async_methods",
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
    ):
        self.key = key
        self.address = address
        self.type_name = type_name
        self.methods = methods
        self.async_methods = async_methods
        self.max_restarts = max_restarts
        self.restarts = restarts

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
            ),
        )

    def __trident_local__(self) -> Any:
        """The value user code sees: an `Actor` handle bound to the current client."""
        from .handle import Actor

        return Actor._from_location(self)

    def __repr__(self) -> str:
        return f"<ActorLocation {self.type_name} {self.key!r} on {self.address}>"
