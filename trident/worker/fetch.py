"""`fetch_from_peer`: the worker's side of a `GetData` request to another worker.

`WorkerState` decides what to fetch from whom (its per-peer limits, see `peers`); the
worker runs one `fetch_from_peer` per `Fetch` instruction and feeds the state the
outcome (`FetchDone` or `FetchFailed`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..comm.rpc import PeerPool, PeerUnavailable
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.serialize import loads

logger = logging.getLogger("trident.worker")


async def fetch_from_peer(
    pool: PeerPool, peer: str, keys: list[str], who: str
) -> dict[str, Any] | None:
    """The values of `keys` from `peer`, by key; None when the fetch failed.

    A failure (the peer unreachable, a wrong reply, data that cannot be loaded) is
    logged, naming worker `who`, and never raised.
    """
    try:
        reply = await pool.request(peer, lambda rid: m.GetData(rid, keys))
        if not isinstance(reply, m.DataReply):
            raise ProtocolError(f"expected DataReply from {peer}, got {type(reply).__name__}")
        return {key: loads(payload) for key, payload in reply.data.items()}
    except (PeerUnavailable, ProtocolError) as exc:
        logger.info("worker %s: fetching %d keys from %s failed: %s", who, len(keys), peer, exc)
    except Exception as exc:
        logger.warning("worker %s: data from %s could not be loaded: %r", who, peer, exc)
    return None
