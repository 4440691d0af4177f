"""`AioClient`: the client for asyncio programs, as dask's ``distributed.asyncio``.

``AioClient(...)`` is ``Client(..., asynchronous=True)``: start it with
``client = await AioClient(address)`` (and ``await client.close()``) or
``async with AioClient() as client:``; waiting methods return coroutines
(``await client.submit(f, x)``, ``await client.gather([...])``). It works under trio
too, like every asynchronous `Client`.

This module's name shadows the standard library's ``asyncio`` only for relative
imports, which trident never uses; it imports nothing from ``asyncio`` itself.
"""

from __future__ import annotations

from typing import Any

from trident.client.client import Client

__all__ = ["AioClient"]


class AioClient(Client):
    """Connect to and drive computation on a trident cluster from async code.

    Takes `Client`'s arguments (an address, a `LocalCluster`, or none to start a local
    cluster owned by this client, ...) and is always asynchronous: ``asynchronous=False``
    raises `ValueError`. Nothing connects until it is awaited or entered with
    ``async with``.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        if not kwargs.setdefault("asynchronous", True):
            raise ValueError("an AioClient is always asynchronous; use Client for blocking use")
        super().__init__(*args, **kwargs)
