"""The connection handshake: msgpack only, mutual challenge-response on the cluster token.

1. server -> peer: `Challenge` (fresh server nonce, server id; whether a token is required)
2. peer -> server: `Hello` (role, name, fresh peer nonce, the peer's proof)
3. server -> peer: `Welcome` (the server's proof) or `Refused` (a reason, and the
   server's proof of the refusal when it can give one) and close.

Each proof is an HMAC-SHA256 under the token of one message that names its direction,
both roles (the peer's: client, worker, peer, nanny; the server's: scheduler, worker),
both nonces and the server id::

    "trident-v2|peer->server|<peer role>|<server role>|" + server nonce + "|"
        + peer nonce + "|" + server id
    "trident-v2|server->peer|..." (same fields)                           (Welcome)
    "trident-v2|server->peer-refused|..." (same fields) + "|" + reason    (Refused)

The token never travels. A `Hello` replayed on another connection fails (its server
nonce is stale); a `Welcome` replayed from another connection fails (its peer nonce is
stale); a proof reflected back in the other direction fails (the direction differs);
a handshake relayed to another kind of server of the cluster fails (a client that
expects its scheduler is not welcomed by a worker's proof, so whatever takes a dead
scheduler's port cannot pass a worker's answer off as the scheduler's). A relay to
the very server the peer expects is a man in the middle: only TLS stops that.

**No downgrade.** A peer that holds a token requires the server's proof on every
connection, whatever the server's `Challenge` claims: a server that says no token is
needed, or sends an empty or wrong proof, is refused before anything else is read from
it, so nothing it sends is ever unpickled. Payloads are refused by the connection until
this completes. A peer that sends anything but a `Hello`, or nothing in time, is told
why (`Refused`) before the server closes.

The token authenticates the two ends; it does not protect the bytes between them (see
docs/deploy.md: TLS does that).

**Certificate binding.** A TLS peer that checks no certificate (one reaching workers,
which may serve certificates of their own: `Security.listener_security`) binds every
proof to the SHA-256 of the certificate the server presented, by proving the server id
``<server id>|tls-sha256=<hex>``. The server binds to its own certificate and accepts a
proof bound or not (a peer that checked the certificate against the CA or the pin binds
nothing), answering in kind. A relay that ends TLS on both sides shows the peer a
certificate other than the server's, so the peer's proof matches nothing the server
accepts, and the server's proof nothing the peer expects.
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
from .address import AddressError, parse_host_port
from .connection import Connection, ConnectionClosed
from .streams import StreamClosed
from .tls import speaks_tls

HANDSHAKE_TIMEOUT = 10.0
ROLES = ("client", "worker", "peer", "nanny")
SERVER_ROLES = ("scheduler", "worker")
NONCE_BYTES = 16

_PEER_TO_SERVER = b"trident-v2|peer->server|"
_SERVER_TO_PEER = b"trident-v2|server->peer|"
_SERVER_REFUSED = b"trident-v2|server->peer-refused|"


class HandshakeInterrupted(AuthenticationError):
    """The handshake did not complete: the connection closed or timed out before the
    server proved anything (a restarting server, a reset, a TLS mismatch)."""


class ServerRefused(AuthenticationError):
    """The server answered our `Hello` with `Refused`.

    `proven` says whether the refusal carried the server's proof of our token: only then
    is it known to come from our cluster (a reconnecting peer stops trying at once);
    an unproven refusal may come from anything that took the address.
    """

    def __init__(self, message: str, *, proven: bool):
        super().__init__(message)
        self.proven = proven


def _proof(
    label: bytes,
    token: str,
    role: str,
    server_role: str,
    server_nonce: bytes,
    peer_nonce: bytes,
    server_id: str,
    extra: bytes = b"",
) -> bytes:
    """HMAC of the token over one direction's `label`, both roles, both nonces, the
    server id and `extra`: a proof is valid for that connection and direction alone."""
    message = b"|".join(
        [label + f"{role}|{server_role}".encode(), server_nonce, peer_nonce, server_id.encode()]
    )
    return hmac.new(token.encode(), message + extra, hashlib.sha256).digest()


def peer_proof(
    token: str,
    role: str,
    server_role: str,
    server_nonce: bytes,
    peer_nonce: bytes,
    server_id: str,
) -> bytes:
    """The peer's proof of `token` in its `Hello` (peer -> server)."""
    return _proof(_PEER_TO_SERVER, token, role, server_role, server_nonce, peer_nonce, server_id)


def server_proof(
    token: str,
    role: str,
    server_role: str,
    server_nonce: bytes,
    peer_nonce: bytes,
    server_id: str,
) -> bytes:
    """The server's proof of `token` in its `Welcome` (server -> peer)."""
    return _proof(_SERVER_TO_PEER, token, role, server_role, server_nonce, peer_nonce, server_id)


def refusal_proof(
    token: str,
    role: str,
    server_role: str,
    server_nonce: bytes,
    peer_nonce: bytes,
    server_id: str,
    reason: str,
) -> bytes:
    """The server's proof of `token` in a `Refused` that answers a `Hello`."""
    return _proof(
        _SERVER_REFUSED,
        token,
        role,
        server_role,
        server_nonce,
        peer_nonce,
        server_id,
        b"|" + reason.encode(),
    )


async def accept(
    connection: Connection, *, token: str | None, server_id: str, server_role: str = "scheduler"
) -> Hello:
    """Server side: authenticate the peer, return its `Hello`.

    `server_role` is what this server is (``"scheduler"`` or ``"worker"``); it is bound
    into the proofs, and peers state which they expect.

    Raises `ProtocolError` for malformed or late handshakes and `AuthenticationError` for
    bad credentials; in both cases the peer has been told why when possible.
    """
    nonce = os.urandom(NONCE_BYTES)
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
    # The server id the peer's proof is bound to (see "Certificate binding"), if any.
    bound_id = server_id
    proven = False
    if token is not None:
        for candidate in _bindings(connection, server_id):
            expected = peer_proof(token, hello.role, server_role, nonce, hello.nonce, candidate)
            if hmac.compare_digest(hello.proof, expected):
                bound_id, proven = candidate, True
                break
    reason = None
    if hello.protocol != PROTOCOL_VERSION:
        reason = f"protocol version {hello.protocol} is not supported (need {PROTOCOL_VERSION})"
    elif hello.role not in ROLES:
        reason = f"unknown role {hello.role!r}"
    elif len(hello.nonce) != NONCE_BYTES:
        reason = f"the peer's nonce must be {NONCE_BYTES} bytes"
    elif token is not None and not proven:
        reason = "invalid cluster token"
    binding = (hello.role, server_role, nonce, hello.nonce, bound_id)
    if reason is not None:
        proof = b""
        if token is not None and hello.protocol == PROTOCOL_VERSION:
            proof = refusal_proof(token, *binding, reason)
        await _refuse(connection, reason, proof)
        raise AuthenticationError(f"refused {hello.role} {hello.name!r}: {reason}")
    proof = b"" if token is None else server_proof(token, *binding)
    await connection.send([Welcome(proof, server_id)])
    connection.authenticated = True
    return hello


def _bindings(connection: Connection, server_id: str) -> list[str]:
    """The server ids a proof on `connection` may be bound to, the bound one first."""
    certificate = getattr(connection.stream, "certificate_binding", None)
    if certificate is None:
        return [server_id]
    return [f"{server_id}|tls-sha256={certificate}", server_id]


async def _refuse(connection: Connection, reason: str, proof: bytes = b"") -> None:
    """Tell the peer why it is refused, if it is still listening (at most a second)."""
    with anyio.move_on_after(1):
        with contextlib.suppress(
            StreamClosed, anyio.BrokenResourceError, anyio.ClosedResourceError
        ):
            await connection.send([Refused(reason, proof)])


async def offer(
    connection: Connection,
    *,
    role: str,
    name: str,
    token: str | None,
    server_role: str = "scheduler",
) -> Welcome:
    """Peer side: answer the server's challenge; return its `Welcome`.

    With a `token`, the server must prove it knows it, whatever its `Challenge` says,
    and prove it as the kind of server we expect (`server_role`: ``"scheduler"`` or
    ``"worker"``). Nothing the server sends is unpickled before it proved itself.

    Raises `ServerRefused` (an `AuthenticationError`) if the server refuses us;
    `HandshakeInterrupted` (one too) if it closes the connection during the handshake (a
    TLS server refusing our certificate does that) or does not complete it in time (a
    TLS server reached over plain TCP stays silent); `AuthenticationError` if it cannot
    prove it knows our token or requires a token we do not have; `ProtocolError` if it
    does not speak the handshake.
    """
    try:
        return await _offer_watching_for_tls(
            connection, role=role, name=name, token=token, server_role=server_role
        )
    except TimeoutError:
        raise HandshakeInterrupted(
            f"{connection.peer} did not complete the handshake within {HANDSHAKE_TIMEOUT} s; "
            "if it serves TLS, connect to its tls:// address with Security(tls_ca_file=...)"
        ) from None
    except (ConnectionClosed, StreamClosed) as exc:
        raise HandshakeInterrupted(
            f"{connection.peer} closed the connection during the handshake: {exc}"
        ) from None


#: How long a plain-TCP peer waits for the server's `Challenge` before it checks whether
#: the server speaks TLS (a TLS server stays silent until it gets a ClientHello).
TLS_PROBE_DELAY = 0.3


async def _offer_watching_for_tls(
    connection: Connection, *, role: str, name: str, token: str | None, server_role: str
) -> Welcome:
    """`_offer`; over plain TCP, a server that is silent for `TLS_PROBE_DELAY` seconds is
    probed for TLS, and one that speaks it is reported at once (`HandshakeInterrupted`)
    instead of after `HANDSHAKE_TIMEOUT` seconds of silence."""
    target = _tcp_target(connection.peer)
    if target is None:
        return await _offer(connection, role=role, name=name, token=token, server_role=server_role)
    outcome: list[Welcome | BaseException] = []

    async def offer_and_stop() -> None:
        try:
            outcome.append(
                await _offer(connection, role=role, name=name, token=token, server_role=server_role)
            )
        except Exception as exc:
            outcome.append(exc)
        tg.cancel_scope.cancel()

    async def probe() -> None:
        await anyio.sleep(TLS_PROBE_DELAY)
        if await speaks_tls(*target):
            host, port = target
            outcome.append(
                HandshakeInterrupted(
                    f"{connection.peer} did not complete the handshake: it serves TLS and "
                    f"this connection is plain TCP; connect to its tls:// address "
                    f"tls://{host}:{port} with the cluster's credential "
                    "(security='TOKEN#tls-sha256=...', or Client(scheduler_file=...); see "
                    "docs/deploy.md)"
                )
            )
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(offer_and_stop)
        tg.start_soon(probe)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _tcp_target(peer: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``tcp://`` peer address, else None."""
    if not peer.startswith("tcp://"):
        return None
    try:
        return parse_host_port(peer[len("tcp://") :])
    except AddressError:
        return None


async def _offer(
    connection: Connection, *, role: str, name: str, token: str | None, server_role: str
) -> Welcome:
    with anyio.fail_after(HANDSHAKE_TIMEOUT):
        challenge = await connection.receive_one(Challenge)
        if challenge.protocol != PROTOCOL_VERSION:
            raise AuthenticationError(
                f"the server at {connection.peer} speaks protocol version {challenge.protocol}, "
                f"this process {PROTOCOL_VERSION}: run the same trident version on both"
            )
        if token is None and challenge.auth_required:
            raise AuthenticationError(
                f"the server at {connection.peer} requires a cluster token and none was given "
                "(pass security=/token or set TRIDENT_TOKEN)"
            )
        if token is not None and not challenge.auth_required:
            raise AuthenticationError(
                f"the server at {connection.peer} claims no cluster token is needed, but this "
                "process holds one: refusing a server that cannot prove it knows the token"
            )
        if token is not None and len(challenge.nonce) != NONCE_BYTES:
            raise AuthenticationError(
                f"the server at {connection.peer} sent a {len(challenge.nonce)}-byte nonce; "
                f"a server of this cluster sends {NONCE_BYTES} fresh bytes"
            )
        own_nonce = os.urandom(NONCE_BYTES)
        bound_id = _bindings(connection, challenge.server_id)[0]
        binding = (role, server_role, challenge.nonce, own_nonce, bound_id)
        proof = b"" if token is None else peer_proof(token, *binding)
        await connection.send([Hello(role, name, PROTOCOL_VERSION, proof, own_nonce)])
        answer = await connection.receive_one(Welcome, Refused)
    if isinstance(answer, Refused):
        proven = token is not None and hmac.compare_digest(
            answer.proof, refusal_proof(token, *binding, answer.reason)
        )
        raise ServerRefused(
            f"{connection.peer} refused the connection: {answer.reason}", proven=proven
        )
    if token is not None and (
        answer.server_id != challenge.server_id
        or not hmac.compare_digest(answer.proof, server_proof(token, *binding))
    ):
        raise AuthenticationError(
            f"the server at {connection.peer} could not prove it knows the cluster token "
            f"(as a {server_role})"
        )
    connection.authenticated = True
    return answer


__all__ = [
    "AuthenticationError",
    "HandshakeInterrupted",
    "ProtocolError",
    "ServerRefused",
    "accept",
    "offer",
    "peer_proof",
    "refusal_proof",
    "server_proof",
]
