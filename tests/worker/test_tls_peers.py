"""Workers that hold only the credential (token and the scheduler's pin) serve TLS too.

As a remote ``trident worker`` given ``TOKEN#tls-sha256=HEX`` does: no certificate
files, so each worker serves its peers with a throwaway certificate of its own, which
peers accept through the token proof bound to that certificate (comm/handshake.py).
"""

from __future__ import annotations

import pytest
import trio

from trident import Client, Security
from trident.cluster.servers import Scheduler, Worker
from trident.comm import handshake
from trident.comm.connection import Connection
from trident.comm.transports import connect
from trident.protocol.errors import ProtocolError

TOKEN = "peer-tls-token"


def make_block(n: int) -> bytes:
    return bytes(range(256)) * n


def checksum(block: bytes) -> int:
    return sum(block)


@pytest.fixture
def scheduler_security(tls_security) -> Security:
    """The scheduler's TLS as `trident up` on a non-loopback host sets it up: its own
    certificate, no client certificates required (the token authenticates peers)."""
    return Security(
        token=TOKEN,
        tls_cert=tls_security.tls_cert,
        tls_key=tls_security.tls_key,
        require_client_cert=False,
        tls_fingerprint=tls_security.tls_fingerprint,
    )


async def test_credential_only_workers_exchange_data_over_tls(scheduler_security):
    credential = Security().with_credential(scheduler_security.credential)
    assert credential.tls_cert is None
    assert credential.tls_fingerprint is not None
    with trio.fail_after(60):
        async with (
            Scheduler("tls://127.0.0.1:0", security=scheduler_security) as scheduler,
            Worker(scheduler.address, security=credential, name="a") as a,
            Worker(scheduler.address, security=credential, name="b") as b,
            Client(scheduler.address, security=credential, asynchronous=True) as client,
        ):
            assert scheduler.address.startswith("tls://")
            assert a.address.startswith("tls://")
            assert b.address.startswith("tls://")
            block = client.submit(make_block, 4096, workers=[a.address])
            total = client.submit(checksum, block, workers=[b.address], allow_other_workers=False)
            assert await total == checksum(make_block(4096))
            # Only a held the block: b fetched it from a's tls:// peer port.
            assert a.address in b._peers._channels


async def test_a_worker_certificate_needs_the_token_bound_to_it(scheduler_security):
    """A peer that checks no certificate is only welcomed by a proof bound to the one it
    was shown: the right token over an unbound proof (what a relay that ends TLS on
    both sides could pass on) is refused."""
    credential = Security().with_credential(scheduler_security.credential)
    with trio.fail_after(60):
        async with (
            Scheduler("tls://127.0.0.1:0", security=scheduler_security) as scheduler,
            Worker(scheduler.address, security=credential, name="a") as worker,
        ):
            peer_context = credential.client_ssl_context().trident_peer_context
            stream = await connect(worker.address, ssl_context=peer_context)
            assert stream.certificate_binding is not None
            connection = Connection(stream, peer=worker.address)
            await handshake.offer(
                connection, role="peer", name="p", token=TOKEN, server_role="worker"
            )
            await connection.aclose()

            stream = await connect(worker.address, ssl_context=peer_context)
            stream.certificate_binding = "0" * 64  # as if a relay had shown its own
            connection = Connection(stream, peer=worker.address)
            with pytest.raises((handshake.ServerRefused, ProtocolError)):
                await handshake.offer(
                    connection, role="peer", name="p", token=TOKEN, server_role="worker"
                )
            await connection.aclose()
