"""`uses_asyncio`: which actors get an asyncio loop of their own."""

from __future__ import annotations

from tests.actors.test_asyncio_actors import AnyioNapper, Gate, Mailroom, Napper, TrioNapper
from trident.worker.asyncio_actors import libraries_named, uses_asyncio


def test_which_actors_are_asyncio_actors():
    assert uses_asyncio(Gate())  # holds an asyncio.Event
    assert uses_asyncio(Napper())  # asyncio.sleep in a method
    assert uses_asyncio(Mailroom())  # a name taken from asyncio
    assert not uses_asyncio(TrioNapper())  # trio wins when both are named
    assert libraries_named(TrioNapper) == {"asyncio", "trio"}
    assert not uses_asyncio(AnyioNapper())

    class ImportsInside:
        async def nap(self) -> None:
            import asyncio as aio

            await aio.sleep(0)

    assert uses_asyncio(ImportsInside())
