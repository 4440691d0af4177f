"""The connection handshake: msgpack only, challenge-response on the cluster token.

1. server -> peer: `Challenge` (fresh nonce; whether a token is required)
2. peer -> server: `Hello` (role, name, HMAC of the nonce under the token, own nonce)
3. server -> peer: `Welcome` (HMAC of the peer's nonce, so the peer can check the
   server) or `Refused` (with a reason) and close.

The token never travels. A replayed `Hello` fails because every challenge is fresh.
Payloads are refused by the connection until this completes. A peer that sends anything
but a `Hello`, or nothing in time, is told why (`Refused`) before the server closes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os

import anyio

from .._exceptions import AuthenticationError as AuthenticationError
from ..protocol.errors import ProtocolError
from ..protocol.messages import PROTOCOL_VERSION, Challenge, Hello, Refused, Welcome
from .connection import Connection, ConnectionClosed
from .streams import StreamClosed

HANDSHAKE_TIMEOUT = 10.0
ROLES = ("client", "worker", "peer", "nanny")


def _proof(token: str, label: bytes, nonce: bytes) -> bytes:
    return hmac.new(token.encode(), label + nonce, hashlib.sha256).digest()


async def accept(connection: Connection, *, token: str | None, server_id: str) -> Hello:
    """Server side: authenticate the peer, return its `Hello`.

    Raises `ProtocolError` for malformed or late handshakes and `AuthenticationError` for
    bad credentials; in both cases the peer has been told why when possible.
    """
    nonce = os.urandom(16)
    try:
        with anyio.fail_after(HANDSHAKE_TIMEOUT):
            await connection.send(
                [Challenge(nonce, server_id, PROTOCOL_VERSION, token is not None)]
            )
            hello = await connection.receive_one(Hello)
    except TimeoutError:
        await _refuse(connection, f"no Hello within {HANDSHAKE_TIMEOUT} s")
        raise ProtocolError(f"no Hello within {HANDSHAKE_TIMEOUT} s") from None
    except ProtocolError as exc:
        await _refuse(connection, f"invalid handshake: {exc}")
        raise
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
        await _refuse(connection, reason)
        raise AuthenticationError(f"refused {hello.role} {hello.name!r}: {reason}")
    server_proof = _proof(token, b"welcome:", hello.nonce) if token is not None else b""
    await connection.send([Welcome(server_proof, server_id)])
    connection.authenticated = True
    return hello


async def _refuse(connection: Connection, reason: str) -> None:
    """Tell the peer why it is refused, if it is still listening (at most a second)."""
    with anyio.move_on_after(1):
        with contextlib.suppress(
            StreamClosed, anyio.BrokenResourceError, anyio.ClosedResourceError
        ):
            await connection.send([Refused(reason)])


async def offer(connection: Connection, *, role: str, name: str, token: str | None) -> Welcome:
    """Peer side: answer the server's challenge; return its `Welcome`.

    Raises `AuthenticationError` if the server refuses us, cannot prove it knows the
    token, closes the connection during the handshake (a TLS server refusing our
    certificate does that) or sends no challenge in time (a TLS server reached over
    plain TCP stays silent); `ProtocolError` if it does not speak the handshake.
    """
    try:
        return await _offer(connection, role=role, name=name, token=token)
    except TimeoutError:
        raise AuthenticationError(
            f"{connection.peer} did not complete the handshake within {HANDSHAKE_TIMEOUT} s; "
            "if it serves TLS, connect to its tls:// address with Security(tls_ca_file=...)"
        ) from None
    except (ConnectionClosed, StreamClosed) as exc:
        raise AuthenticationError(
            f"{connection.peer} closed the connection during the handshake: {exc}"
        ) from None


async def _offer(connection: Connection, *, role: str, name: str, token: str | None) -> Welcome:
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
