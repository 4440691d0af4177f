"""The connection handshake: msgpack only, challenge-response on the cluster token.

1. server -> peer: `Challenge` (fresh nonce; whether a token is required)
2. peer -> server: `Hello` (role, name, HMAC of the nonce under the token, own nonce)
3. server -> peer: `Welcome` (HMAC of the peer's nonce, so the peer can check the
   server) or `Refused` (with a reason) and close.

The token never travels. A replayed `Hello` fails because every challenge is fresh.
Payloads are refused by the connection until this completes.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import anyio

from ..protocol.errors import ProtocolError
from ..protocol.messages import PROTOCOL_VERSION, Challenge, Hello, Refused, Welcome
from .connection import Connection

HANDSHAKE_TIMEOUT = 10.0
ROLES = ("client", "worker", "peer")


class AuthenticationError(ConnectionError):
    """The other side refused our credentials, or failed to prove its own."""


def _proof(token: str, label: bytes, nonce: bytes) -> bytes:
    return hmac.new(token.encode(), label + nonce, hashlib.sha256).digest()


async def accept(connection: Connection, *, token: str | None, server_id: str) -> Hello:
    """Server side: authenticate the peer, return its `Hello`.

    Raises `ProtocolError` for malformed or late handshakes and `AuthenticationError` for
    bad credentials; in both cases the peer has been told why when possible.
    """
    nonce = os.urandom(16)
    with anyio.fail_after(HANDSHAKE_TIMEOUT):
        await connection.send([Challenge(nonce, server_id, PROTOCOL_VERSION, token is not None)])
        hello = await connection.receive_one(Hello)
    reason = None
    if hello.protocol != PROTOCOL_VERSION:
        reason = f"protocol version {hello.protocol} is not supported (need {PROTOCOL_VERSION})"
    elif hello.role not in ROLES:
        reason = f"unknown role {hello.role!r}"
    elif token is not None and not hmac.compare_digest(
        hello.proof, _proof(token, b"hello:" + hello.role.encode() + b":", nonce)
    ):
        reason = "invalid cluster token"
    if reason is not None:
        with anyio.move_on_after(1):
            await connection.send([Refused(reason)])
        raise AuthenticationError(f"refused {hello.role} {hello.name!r}: {reason}")
    server_proof = _proof(token, b"welcome:", hello.nonce) if token is not None else b""
    await connection.send([Welcome(server_proof, server_id)])
    connection.authenticated = True
    return hello


async def offer(connection: Connection, *, role: str, name: str, token: str | None) -> Welcome:
    """Peer side: answer the server's challenge; return its `Welcome`.

    Raises `AuthenticationError` if the server refuses us or cannot prove it knows the
    token, and `ProtocolError` if it does not speak the handshake.
    """
    with anyio.fail_after(HANDSHAKE_TIMEOUT):
        challenge = await connection.receive_one(Challenge)
        if challenge.auth_required and token is None:
            raise AuthenticationError(
                f"the server at {connection.peer} requires a cluster token and none was given "
                "(pass security=/token or set TRIDENT_TOKEN)"
            )
        own_nonce = os.urandom(16)
        proof = (
            _proof(token, b"hello:" + role.encode() + b":", challenge.nonce)
            if token is not None
            else b""
        )
        await connection.send([Hello(role, name, PROTOCOL_VERSION, proof, own_nonce)])
        answer = await connection.receive_one(Welcome, Refused)
    if isinstance(answer, Refused):
        raise AuthenticationError(f"{connection.peer} refused the connection: {answer.reason}")
    if (
        challenge.auth_required
        and token is not None
        and not hmac.compare_digest(answer.proof, _proof(token, b"welcome:", own_nonce))
    ):
        raise AuthenticationError(f"{connection.peer} could not prove it knows the cluster token")
    connection.authenticated = True
    return answer


__all__ = ["AuthenticationError", "ProtocolError", "accept", "offer"]
