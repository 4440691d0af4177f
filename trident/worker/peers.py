"""`PeerServer`: what a worker answers on its listening address.

Clients and other workers connect to a worker directly (mutually authenticated with the
cluster token, as every connection) to fetch data (`GetData`), store scattered data
(`PutData`), call hosted actors (`ActorCall`, `ActorCancel`), read its logs, run
functions in it (`Client.run`) and ask what it does (call stacks, its task queue, its
profile, package versions). Each connection is served by one task in the worker's
nursery; a peer that breaks the protocol loses its connection, not the worker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from .._run_function import run_function
from .._versions import local_versions
from ..comm import handshake
from ..comm.admission import HandshakeGate
from ..comm.batched import BatchedSender
from ..comm.connection import Connection, ConnectionClosed
from ..comm.streams import ByteStream, StreamClosed
from ..comm.transports import describe
from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.serialize import dumps, loads, sizeof
from . import events as ev
from .executor import Job
from .inspection import call_stacks, task_queue

if TYPE_CHECKING:
    from .actor import Worker

logger = logging.getLogger("trident.worker")


class PeerServer:
    """Serves the peers of `worker`; `jobs` are its running jobs (for call stacks)."""

    def __init__(self, worker: Worker, token: str | None, jobs: dict[int, Job]):
        self._worker = worker
        self._token = token
        self._jobs = jobs
        self._gate = HandshakeGate("worker")

    async def serve(self, stream: ByteStream) -> None:
        """Answer data requests, log requests and actor calls from clients and other workers."""
        worker = self._worker
        worker.logs.claim_current_context()
        connection = Connection(stream, peer=describe(stream))
        try:
            with self._gate.admit() as admitted:
                await handshake.accept(
                    connection, token=self._token, server_id=worker.address, server_role="worker"
                )
        except (ProtocolError, handshake.AuthenticationError, trio.TooSlowError) as exc:
            logger.warning("worker %s: refused peer %s: %s", worker.address, connection.peer, exc)
            return
        except (ConnectionClosed, StreamClosed):
            return
        if admitted.cancelled_caught:
            return  # evicted to make room for newer connections (the gate logs it)
        sender = BatchedSender(connection)
        origin = id(connection)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender.run)
            try:
                while True:
                    self._handle(await connection.receive(), origin, sender, nursery)
                    sender.flush_now()
            except (ConnectionClosed, StreamClosed):
                pass
            except ProtocolError as exc:
                logger.warning(
                    "worker %s: closing connection from %s: %s",
                    worker.address,
                    connection.peer,
                    exc,
                )
            finally:
                worker.actors.forget_origin(origin)
                nursery.cancel_scope.cancel()

    def _handle(
        self,
        messages: list[Any],
        origin: int,
        sender: BatchedSender,
        nursery: trio.Nursery,
    ) -> None:
        """Answer one packet from a peer.

        A method of its own so that the packet (a `PutData` of a large value, say) is not
        kept alive by the receiving loop while it waits for the next one.
        """
        worker = self._worker
        for msg in messages:
            kind = type(msg)
            if kind is m.ActorCall:
                worker.actors.call(origin, msg, sender)
            elif kind is m.ActorCancel:
                worker.actors.cancel(origin, msg.request_id)
            elif kind is m.GetData:
                sender.send(self._get_data(msg))
            elif kind is m.PutData:
                sender.send(self._put_data(msg))
            elif kind is m.LogsRequest:
                records = [list(record) for record in worker.logs.tail(msg.n)]
                sender.send(m.Reply(msg.request_id, records, None))
            elif kind is m.RunFunction:
                nursery.start_soon(self._run_function, msg, sender)
            elif kind in _INSPECTIONS:
                sender.send(m.Reply(msg.request_id, self._inspect(msg), None))
            else:
                raise ProtocolError(f"peers may not send {kind.__name__}")

    async def _run_function(self, call: m.RunFunction, sender: BatchedSender) -> None:
        """`Client.run`: run a client's function in the worker's loop and answer."""
        worker = self._worker
        assert worker.nursery is not None
        sender.send(
            await run_function(
                call, worker, "worker", nursery=worker.nursery, address=worker.address
            )
        )

    def _inspect(self, msg: Any) -> Any:
        """Answer a question about what this worker does (`_INSPECTIONS`)."""
        worker = self._worker
        assert worker.state is not None
        kind = type(msg)
        if kind is m.CallStackRequest:
            return call_stacks(self._jobs, msg.keys)
        if kind is m.TaskQueueRequest:
            return task_queue(worker.state)
        if kind is m.ProfileRequest:
            return worker.profiler.profile(msg.key, msg.start, msg.stop)
        return local_versions(msg.packages)

    def _get_data(self, msg: m.GetData) -> m.DataReply:
        worker = self._worker
        data = worker.data
        found = {}
        missing = []
        for key in msg.keys:
            if key not in data:
                missing.append(key)
                continue
            try:
                found[key] = dumps(data[key])
            except Exception as exc:
                logger.error("worker %s: cannot serialize %r: %r", worker.address, key, exc)
                missing.append(key)
        return m.DataReply(msg.request_id, found, missing)

    def _put_data(self, msg: m.PutData) -> m.Reply:
        worker = self._worker
        assert worker.state is not None
        try:
            values = {key: loads(payload) for key, payload in msg.data.items()}
        except Exception as exc:
            return m.Reply(msg.request_id, None, f"cannot load scattered data: {exc!r}")
        nbytes = {key: sizeof(value) for key, value in values.items()}
        worker.state.handle(ev.DataPut(values, nbytes, worker.stimulus("put-data")))
        worker.flush()
        return m.Reply(msg.request_id, nbytes, None)


#: Questions peers may ask a worker about itself, answered by `PeerServer._inspect`.
_INSPECTIONS = frozenset(
    {m.CallStackRequest, m.TaskQueueRequest, m.ProfileRequest, m.VersionsRequest}
)
