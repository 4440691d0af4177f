"""TLS streams: asyncio clients, and refusals that say what is wrong."""

from __future__ import annotations

import asyncio
import os
import stat
from functools import partial

import pytest
import trio

from trident import Security
from trident.comm.address import AddressError
from trident.comm.tls import TLSError
from trident.comm.transports import connect, serve


async def echo(stream):
    view = memoryview(bytearray(1 << 16))
    while (n := await stream.receive_into(view)) > 0:
        await stream.send_all(view[:n])


def test_self_signed_files_are_private(tls_security):
    assert stat.S_IMODE(os.stat(tls_security.tls_key).st_mode) == 0o600
    assert tls_security.tls
    assert tls_security.require_client_cert


def test_asyncio_tls_stream(tls_security):
    async def main():
        async def on_client(reader, writer):
            writer.write(await reader.readexactly(5))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(
            on_client, "127.0.0.1", 0, ssl=tls_security.server_ssl_context()
        )
        port = server.sockets[0].getsockname()[1]
        stream = await connect(
            f"tls://127.0.0.1:{port}", ssl_context=tls_security.client_ssl_context()
        )
        await stream.send_all(b"ping!")
        buf = memoryview(bytearray(10))
        n = await stream.receive_into(buf)
        await stream.aclose()
        server.close()
        await server.wait_closed()
        return bytes(buf[:n])

    assert asyncio.run(main()) == b"ping!"


async def speak_first(stream):
    """Like a trident server: send a challenge-sized packet first, then read."""
    await stream.send_all(b"\x01\x00\x00\x00" + (40).to_bytes(8, "little") + os.urandom(40))
    await stream.receive_into(memoryview(bytearray(100)))


@pytest.mark.parametrize("handler", [echo, speak_first])
async def test_tls_to_a_plain_tcp_server_says_so(tls_security, handler):
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, "tcp://127.0.0.1:0", handler)
        tls_address = address.replace("tcp://", "tls://")
        with pytest.raises(TLSError, match="does not speak TLS"):
            await connect(tls_address, ssl_context=tls_security.client_ssl_context())
        nursery.cancel_scope.cancel()


async def test_a_certificate_from_another_ca_is_refused(tls_security, tmp_path):
    stranger = Security.self_signed(tmp_path)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(serve, ssl_context=tls_security.server_ssl_context()),
            "tls://127.0.0.1:0",
            echo,
        )
        with pytest.raises(TLSError, match="not signed by the cluster's CA"):
            await connect(address, ssl_context=stranger.client_ssl_context())
        nursery.cancel_scope.cancel()


async def test_tls_addresses_need_credentials():
    with pytest.raises(AddressError, match="need TLS credentials"):
        await connect("tls://127.0.0.1:1")
    with pytest.raises(ValueError, match="tls_ca_file"):
        Security(token="t").client_ssl_context()
    with pytest.raises(ValueError, match="go together"):
        Security(tls_cert="cert.pem")


# --- a pinned certificate: the fingerprint in the credential proves the server ----------


def pinned(fingerprint):
    return Security(tls_fingerprint=fingerprint).client_ssl_context()


@pytest.fixture
def pin_server(tls_security):
    """A server context that asks for no client certificate (the token does that)."""
    server = Security(
        tls_cert=tls_security.tls_cert, tls_key=tls_security.tls_key, require_client_cert=False
    )
    return server.server_ssl_context(), tls_security.tls_fingerprint


async def test_a_pinned_fingerprint_alone_proves_the_server(pin_server):
    context, fingerprint = pin_server
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(serve, ssl_context=context), "tls://127.0.0.1:0", echo
        )
        with trio.fail_after(10):
            stream = await connect(address, ssl_context=pinned(fingerprint))
            await stream.send_all(b"ping")
            view = memoryview(bytearray(10))
            assert bytes(view[: await stream.receive_into(view)]) == b"ping"
            await stream.aclose()
            with pytest.raises(TLSError, match="is not the cluster's"):
                await connect(address, ssl_context=pinned("0" * 64))
        nursery.cancel_scope.cancel()


def test_asyncio_checks_the_pin_too(pin_server):
    context, fingerprint = pin_server

    async def main():
        async def on_client(reader, writer):
            writer.write(await reader.readexactly(2))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=context)
        address = f"tls://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            stream = await connect(address, ssl_context=pinned(fingerprint))
            await stream.send_all(b"ok")
            view = memoryview(bytearray(4))
            got = bytes(view[: await stream.receive_into(view)])
            await stream.aclose()
            with pytest.raises(TLSError, match="is not the cluster's"):
                await connect(address, ssl_context=pinned("f" * 64))
        finally:
            server.close()
            await server.wait_closed()
        return got

    assert asyncio.run(main()) == b"ok"


def test_a_credential_carries_the_token_and_the_pin(tls_security):
    fingerprint = tls_security.tls_fingerprint
    assert fingerprint is not None
    assert len(fingerprint) == 64
    security = Security(token="t0k#en", tls_fingerprint=fingerprint)
    assert security.credential == f"t0k#en#tls-sha256={fingerprint}"
    again = Security().with_credential(security.credential)
    assert (again.token, again.tls_fingerprint) == ("t0k#en", fingerprint)
    assert again.tls  # a pin is enough to connect to tls:// addresses
    plain = Security().with_credential("just-a-token#tls-sha256=nothex")
    assert (plain.token, plain.tls_fingerprint) == ("just-a-token#tls-sha256=nothex", None)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        Security(tls_fingerprint="abc")
