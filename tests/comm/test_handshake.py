"""The handshake: tokens proven by HMAC, never sent; bad peers refused with a reason."""

from __future__ import annotations

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
    assert server.authenticated and client.authenticated


async def test_no_auth_accepts_anyone():
    results, *_ = await run_handshake(None, None)
    assert isinstance(results["client"], m.Welcome)


async def test_wrong_token_is_refused_with_a_reason():
    results, server, client = await run_handshake("secret", "guess")
    assert isinstance(results["client"], handshake.AuthenticationError)
    assert "invalid cluster token" in str(results["client"])
    assert not server.authenticated and not client.authenticated


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
