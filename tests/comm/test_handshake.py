"""The handshake: tokens proven by HMAC, never sent; bad peers refused with a reason."""

from __future__ import annotations

import contextlib
import os

import pytest
import trio

from trident.comm import handshake
from trident.comm.connection import Connection
from trident.comm.streams import InprocStream
from trident.protocol import messages as m
from trident.protocol.errors import ProtocolError


async def run_handshake(server_token, client_token, role="client"):
    server_end, client_end = InprocStream.pair("hs")
    server, client = Connection(server_end), Connection(client_end)
    results = {}

    async def serve():
        try:
            results["server"] = await handshake.accept(server, token=server_token, server_id="s")
        except Exception as exc:
            results["server"] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            results["client"] = await handshake.offer(
                client, role=role, name="c", token=client_token
            )
        except Exception as exc:
            results["client"] = exc
            await client.aclose()
    return results, server, client


async def test_matching_tokens_authenticate_both_sides():
    results, server, client = await run_handshake("secret", "secret")
    assert isinstance(results["server"], m.Hello)
    assert results["server"].role == "client"
    assert server.authenticated
    assert client.authenticated


async def test_no_auth_accepts_anyone():
    results, *_ = await run_handshake(None, None)
    assert isinstance(results["client"], m.Welcome)


async def test_wrong_token_is_refused_with_a_reason():
    results, server, client = await run_handshake("secret", "guess")
    assert isinstance(results["client"], handshake.AuthenticationError)
    assert "invalid cluster token" in str(results["client"])
    assert not server.authenticated
    assert not client.authenticated


async def test_missing_token_is_refused_before_sending_anything():
    results, *_ = await run_handshake("secret", None)
    assert "requires a cluster token" in str(results["client"])


async def test_unknown_role_is_refused():
    results, *_ = await run_handshake(None, None, role="admin")
    assert "unknown role" in str(results["client"])


async def test_a_replayed_hello_is_refused():
    # Record a valid Hello for one challenge, then present it to a fresh challenge.
    results, *_ = await run_handshake("secret", "secret")
    hello = results["server"]
    server_end, client_end = InprocStream.pair("replay")
    server, attacker = Connection(server_end), Connection(client_end)
    outcome = {}

    async def serve():
        try:
            await handshake.accept(server, token="secret", server_id="s")
        except Exception as exc:
            outcome["error"] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        await attacker.receive_one(m.Challenge)
        await attacker.send([hello])
        reply = await attacker.receive_one(m.Refused)
    assert "invalid cluster token" in reply.reason
    assert isinstance(outcome["error"], handshake.AuthenticationError)


async def test_payloads_in_the_handshake_are_protocol_errors():
    from trident.protocol.serialize import dumps

    server_end, client_end = InprocStream.pair("pickle")
    server, peer = Connection(server_end), Connection(client_end)
    outcome = {}

    async def serve():
        try:
            await handshake.accept(server, token=None, server_id="s")
        except Exception as exc:
            outcome["error"] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        await peer.receive_one(m.Challenge)
        await peer.send([m.KeyDone("k", "t", 1, dumps(1))])
    assert isinstance(outcome["error"], ProtocolError)
    assert "before authentication" in str(outcome["error"])


# --- no downgrade, and proofs bound to one connection and one direction ---------------


async def offer_to_rogue(rogue, token="secret", role="client"):
    """Run `offer` against `rogue(connection)`, a scripted server; return what `offer`
    returned or raised."""
    server_end, client_end = InprocStream.pair("rogue")
    server, client = Connection(server_end), Connection(client_end)
    outcome = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rogue, server)
        try:
            outcome["client"] = await handshake.offer(client, role=role, name="c", token=token)
        except Exception as exc:
            outcome["client"] = exc
        nursery.cancel_scope.cancel()
    await client.aclose()
    return outcome["client"], client


def challenge(auth_required=True, nonce=None, server_id="s"):
    return m.Challenge(nonce or os.urandom(16), server_id, m.PROTOCOL_VERSION, auth_required)


async def test_a_token_holder_refuses_a_server_that_says_no_token_is_needed():
    sent = []

    async def rogue(connection):
        await connection.send([challenge(auth_required=False)])
        sent.extend(await connection.receive())
        await connection.send([m.Welcome(b"", "s")])

    result, client = await offer_to_rogue(rogue)
    assert isinstance(result, handshake.AuthenticationError)
    assert "claims no cluster token is needed" in str(result)
    assert sent == []  # not even a Hello went out
    assert not client.authenticated


@pytest.mark.parametrize("proof", [b"", b"x" * 32])
async def test_a_token_holder_refuses_a_welcome_without_a_valid_proof(proof):
    async def rogue(connection):
        await connection.send([challenge()])
        await connection.receive_one(m.Hello)
        await connection.send([m.Welcome(proof, "s")])

    result, client = await offer_to_rogue(rogue)
    assert isinstance(result, handshake.AuthenticationError)
    assert "could not prove it knows the cluster token" in str(result)
    assert not client.authenticated


async def test_a_welcome_replayed_from_another_connection_is_refused():
    # A rogue that once watched a real handshake replays the server's Welcome, and even
    # the server's Challenge: the peer's fresh nonce makes the old proof worthless.
    results, *_ = await run_handshake("secret", "secret")
    welcome = results["client"]
    assert isinstance(welcome, m.Welcome)

    async def rogue(connection):
        await connection.send([challenge(server_id=welcome.server_id)])
        await connection.receive_one(m.Hello)
        await connection.send([welcome])

    result, _ = await offer_to_rogue(rogue)
    assert "could not prove" in str(result)


async def test_a_reflected_hello_proof_is_not_a_welcome():
    # The rogue hands the peer's own proof back as the server's: the direction differs.
    async def rogue(connection):
        await connection.send([challenge()])
        hello = await connection.receive_one(m.Hello)
        await connection.send([m.Welcome(hello.proof, "s")])

    result, _ = await offer_to_rogue(rogue)
    assert "could not prove" in str(result)


async def test_a_welcome_for_another_role_or_server_id_is_refused():
    nonce = os.urandom(16)

    async def wrong_role(connection):
        await connection.send([challenge(nonce=nonce)])
        hello = await connection.receive_one(m.Hello)
        proof = handshake.server_proof("secret", "worker", "scheduler", nonce, hello.nonce, "s")
        await connection.send([m.Welcome(proof, "s")])

    async def wrong_server(connection):
        await connection.send([challenge(nonce=nonce)])
        hello = await connection.receive_one(m.Hello)
        proof = handshake.server_proof("secret", "client", "scheduler", nonce, hello.nonce, "other")
        await connection.send([m.Welcome(proof, "other")])

    async def honest(connection):
        await connection.send([challenge(nonce=nonce)])
        hello = await connection.receive_one(m.Hello)
        proof = handshake.server_proof("secret", "client", "scheduler", nonce, hello.nonce, "s")
        await connection.send([m.Welcome(proof, "s")])

    for rogue in (wrong_role, wrong_server):
        result, _ = await offer_to_rogue(rogue)
        assert "could not prove" in str(result), rogue.__name__
    result, client = await offer_to_rogue(honest)
    assert isinstance(result, m.Welcome)
    assert client.authenticated


def test_proofs_bind_direction_role_nonces_and_server_id():
    base = ("secret", "client", "scheduler", b"s" * 16, b"p" * 16, "server")
    proofs = {
        handshake.peer_proof(*base),
        handshake.server_proof(*base),
        handshake.refusal_proof(*base, "no"),
        handshake.peer_proof("other", *base[1:]),
        handshake.peer_proof("secret", "worker", *base[2:]),
        handshake.peer_proof("secret", "client", "worker", *base[3:]),
        handshake.peer_proof(*base[:3], b"S" * 16, b"p" * 16, "server"),
        handshake.peer_proof(*base[:3], b"s" * 16, b"P" * 16, "server"),
        handshake.peer_proof(*base[:3], b"p" * 16, b"s" * 16, "server"),
        handshake.peer_proof(*base[:5], "other"),
        handshake.refusal_proof(*base, "another reason"),
    }
    assert len(proofs) == 11


async def test_a_hello_for_another_server_id_is_refused():
    # A Hello computed for another server (same nonce) fails: the server id is bound.
    server_end, client_end = InprocStream.pair("bound")
    server, peer = Connection(server_end), Connection(client_end)
    outcome = {}

    async def serve():
        try:
            await handshake.accept(server, token="secret", server_id="s")
        except Exception as exc:
            outcome["error"] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        got = await peer.receive_one(m.Challenge)
        nonce = os.urandom(16)
        proof = handshake.peer_proof("secret", "client", "scheduler", got.nonce, nonce, "else")
        await peer.send([m.Hello("client", "c", m.PROTOCOL_VERSION, proof, nonce)])
        reply = await peer.receive_one(m.Refused)
    assert reply.reason == "invalid cluster token"
    assert isinstance(outcome["error"], handshake.AuthenticationError)


async def test_refusals_are_proven_only_to_holders_of_the_token():
    results, *_ = await run_handshake("secret", "guess")
    assert isinstance(results["client"], handshake.ServerRefused)
    assert not results["client"].proven  # a wrong token cannot check the server's proof
    results, *_ = await run_handshake("secret", "secret", role="admin")
    assert isinstance(results["client"], handshake.ServerRefused)
    assert results["client"].proven  # our own cluster says no: final


async def test_a_forged_refusal_is_not_proven():
    async def rogue(connection):
        await connection.send([challenge()])
        await connection.receive_one(m.Hello)
        await connection.send([m.Refused("go away", b"x" * 32)])

    result, _ = await offer_to_rogue(rogue)
    assert isinstance(result, handshake.ServerRefused)
    assert not result.proven


async def test_a_server_of_another_protocol_version_is_refused_before_the_hello():
    async def old(connection):
        await connection.send([m.Challenge(os.urandom(16), "s", 1, True)])
        await connection.receive()

    result, _ = await offer_to_rogue(old)
    assert isinstance(result, handshake.AuthenticationError)
    assert "protocol version 1" in str(result)


async def test_a_handshake_relayed_to_a_worker_does_not_pass_for_the_scheduler():
    # A rogue that took the scheduler's port relays the client's handshake to a live
    # worker of the same cluster: the worker's honest proof is for a worker.
    worker_end, rogue_to_worker = InprocStream.pair("worker")
    rogue_to_client, client_end = InprocStream.pair("client")
    worker, upstream = Connection(worker_end), Connection(rogue_to_worker)
    downstream, client = Connection(rogue_to_client), Connection(client_end)
    outcome = {}

    async def serve():
        with contextlib.suppress(Exception):
            await handshake.accept(worker, token="secret", server_id="w", server_role="worker")

    async def relay():
        await downstream.send([await upstream.receive_one(m.Challenge)])
        await upstream.send([await downstream.receive_one(m.Hello)])
        await downstream.send([await upstream.receive_one(m.Welcome, m.Refused)])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        nursery.start_soon(relay)
        try:
            outcome["client"] = await handshake.offer(client, role="peer", name="c", token="secret")
        except Exception as exc:
            outcome["client"] = exc
        nursery.cancel_scope.cancel()
    assert isinstance(outcome["client"], handshake.AuthenticationError)
    assert not client.authenticated
