"""The handshake: the first messages on every connection, before any other.

msgpack only: no payloads are accepted before it completes (`trident.comm.handshake`
sends and checks these).
"""

from __future__ import annotations

from ..registry import message

#: 2: the handshake's proofs bind direction, role, both nonces and the server id, and
#: `Refused` carries the server's proof (see `comm/handshake.py`).
PROTOCOL_VERSION = 2


@message("challenge")
class Challenge:
    """Server -> peer (`handshake.accept`), first on every connection: prove you know the
    token.

    `auth_required` is informational: a peer that holds a token requires the server's
    proof whatever this says.
    """

    nonce: bytes
    server_id: str
    protocol: int
    auth_required: bool


@message("hello")
class Hello:
    """Peer -> server (`handshake.offer`): who the peer is and its proof of the cluster token."""

    role: str  # "client", "worker", "nanny" or "peer"
    name: str
    protocol: int
    proof: bytes
    nonce: bytes


@message("welcome")
class Welcome:
    """Server -> peer (`handshake.accept`): the handshake succeeded; `proof` lets the peer
    check the server."""

    proof: bytes
    server_id: str


@message("refused")
class Refused:
    """Server -> peer (`handshake.accept`): the handshake failed, with a reason; the server
    then closes.

    `proof` is the server's proof of the token over this refusal (empty when it has no
    token or no `Hello` came): only a proven refusal is final for a reconnecting peer.
    """

    reason: str
    proof: bytes


#: Both directions of the handshake (server -> peer and peer -> server).
Handshake = Challenge | Hello | Welcome | Refused
