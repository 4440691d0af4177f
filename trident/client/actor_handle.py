"""`Actor` (a handle to a remote actor) and `ActorFuture` (the outcome of one call).

A handle is bound to one client: the client that created the actor, the client whose
result it came from, or — inside tasks and actors — the worker's own client. It holds a
future of the actor's key, so the actor lives as long as any handle or future does,
and the handle learns of restarts and deaths through that future.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._actor_location import ActorLocation, public_attributes, public_methods, register_handle
from .._public import publish
from .future import Future

if TYPE_CHECKING:
    from .client import Client


class ActorFuture(Future):
    """The outcome of one actor method call (or attribute read).

    Works like a `Future`: ``await`` it, call `result`, pass it to `Client.gather`,
    `wait` or `as_completed`. It is not reference-counted on the cluster and cannot be
    passed to tasks.
    """

    __slots__ = ()

    def __del__(self) -> None:
        pass  # nothing to release on the cluster

    def cancel(self, force: bool = False, reason: str | None = None, msg: str | None = None) -> Any:
        """Cancel the call: skipped if it has not started, interrupted if it is async.

        A coroutine for asynchronous clients; the future is cancelled when it returns.
        """
        return self._client._sync(self._client._core.actor_calls.cancel, self._state)

    def __reduce__(self) -> tuple:
        raise TypeError("actor call futures cannot be pickled; pass the actor handle instead")

    def __repr__(self) -> str:
        return f"<ActorFuture: {self._state.status}, {self.key}>"


class _Method:
    """A bound actor method: calling it starts a remote call and returns its future."""

    __slots__ = ("_actor", "_name")

    def __init__(self, actor: Actor, name: str):
        self._actor = actor
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> ActorFuture:
        return self._actor._call(self._name, args, kwargs, attribute=False)

    def __repr__(self) -> str:
        return f"<actor method {self._actor._type_name}.{self._name}>"


class Actor:
    """A handle to an actor: call its methods, read its attributes, pass it around.

    ``actor.method(*args)`` returns an `ActorFuture` at once. Reading a public
    attribute returns its value (blocking clients) or an awaitable `ActorFuture`
    (asynchronous clients). Handles can be passed to tasks and to other actors' methods.
    """

    def __init__(
        self,
        key: str,
        client: Client,
        future: Future,
        type_name: str,
        methods: frozenset[str],
        async_methods: frozenset[str],
        location: ActorLocation | None = None,
        attributes: frozenset[str] = frozenset(),
    ):
        self.key = key
        self._client = client
        self._future = future
        self._type_name = type_name
        self._methods = methods
        self._async_methods = async_methods
        self._location = location
        self._attributes = attributes | (location.attributes if location else frozenset())

    @classmethod
    def _from_future(cls, future: Future, actor_class: type) -> Actor:
        methods, async_methods = public_methods(actor_class)
        return cls(
            future._key,
            future.client,
            future,
            actor_class.__qualname__,
            methods,
            async_methods,
            attributes=public_attributes(actor_class, methods),
        )

    @classmethod
    def _from_location(cls, location: ActorLocation) -> Actor:
        from ..client.context import current_client

        client = current_client()
        future = Future._attach(location.key, client)
        return cls(
            location.key,
            client,
            future,
            location.type_name,
            location.methods,
            location.async_methods,
            location,
        )

    def _call(
        self, name: str, args: tuple, kwargs: dict[str, Any], *, attribute: bool
    ) -> ActorFuture:
        state = self._client._core.actor_calls.call(self, name, args, kwargs, attribute)
        future = ActorFuture._adopt(state.key, self._client, state)
        assert isinstance(future, ActorFuture)
        return future

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._methods:
            return _Method(self, name)
        future = self._call(name, (), {}, attribute=True)
        if self._client.asynchronous:
            return future
        return future.result()

    def __dir__(self) -> list[str]:
        """The handle's own names, and the actor's public methods and attributes (those
        of its class; with a handle that came from the cluster, the instance's too)."""
        return sorted(set(super().__dir__()) | self._methods | self._attributes)

    def __reduce__(self) -> tuple[Callable[..., Actor], tuple[Any, ...]]:
        return (
            _rebuild_actor,
            (
                self.key,
                self._type_name,
                self._methods,
                self._async_methods,
                self._location,
                self._attributes,
            ),
        )

    def __repr__(self) -> str:
        return f"<Actor: {self._type_name}, key={self.key}>"


def _rebuild_actor(
    key: str,
    type_name: str,
    methods: frozenset[str],
    async_methods: frozenset[str],
    location: ActorLocation | None,
    attributes: frozenset[str] = frozenset(),
) -> Actor:
    from .context import current_client

    client = current_client()
    future = Future._attach(key, client)
    return Actor(key, client, future, type_name, methods, async_methods, location, attributes)


register_handle(Actor._from_location)


publish(globals())
