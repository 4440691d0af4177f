"""`Uploads`: files sent with `Client.upload_file`, for current and future workers, sans-IO.

The scheduler keeps every uploaded file (the latest version of each name) and sends it
to each worker that registers later, before any task: the scheduler -> worker
connection is ordered, so a task never runs before the files are imported. The client
is answered once every worker connected at upload time stored and imported the file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..protocol import messages as m
from .records import ClientRecord, WorkerRecord


@attrs.define(eq=False)
class PendingUpload:
    client_id: str
    request_id: int
    filename: str
    waiting: set[str]
    errors: dict[str, str] = attrs.Factory(dict)


class Uploads:
    """Uploaded files and the uploads still waiting for workers."""

    def __init__(self, workers: Mapping[str, WorkerRecord], send: Callable[[str, Any], None]):
        self._workers = workers
        self._send = send
        #: filename -> (content, import it), in upload order
        self.files: dict[str, tuple[bytes, bool]] = {}
        self.pending: dict[int, PendingUpload] = {}
        self._ids = itertools.count(1)

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        return {m.UploadFile: self._on_upload}

    def _on_upload(self, cs: ClientRecord, msg: m.UploadFile) -> None:
        """Keep the file (replacing one of the same name) and send it to every worker."""
        self.files.pop(msg.filename, None)
        self.files[msg.filename] = (msg.data, msg.load)
        upload = next(self._ids)
        pending = PendingUpload(cs.client_id, msg.request_id, msg.filename, set(self._workers))
        for address in pending.waiting:
            self._send(address, m.StoreFile(upload, msg.filename, msg.data, msg.load))
        self.pending[upload] = pending
        self._finish(upload)

    def on_file_stored(self, ws: WorkerRecord, msg: m.FileStored) -> None:
        pending = self.pending.get(msg.upload)
        if pending is None:
            return
        pending.waiting.discard(ws.address)
        if msg.error is not None:
            pending.errors[ws.address] = msg.error
        self._finish(msg.upload)

    def _finish(self, upload: int) -> None:
        pending = self.pending[upload]
        if pending.waiting:
            return
        del self.pending[upload]
        error = None
        if pending.errors:
            details = "; ".join(f"{a}: {e}" for a, e in sorted(pending.errors.items()))
            error = f"{pending.filename} failed on {len(pending.errors)} workers: {details}"
        self._send(pending.client_id, m.Reply(pending.request_id, None, error))

    def worker_added(self, address: str) -> None:
        """Send every uploaded file to a worker that just registered."""
        for filename, (data, load) in self.files.items():
            self._send(address, m.StoreFile(0, filename, data, load))

    def worker_removed(self, address: str) -> None:
        for upload, pending in list(self.pending.items()):
            if address in pending.waiting:
                pending.waiting.discard(address)
                self._finish(upload)

    def client_removed(self, client_id: str) -> None:
        for upload, pending in list(self.pending.items()):
            if pending.client_id == client_id:
                del self.pending[upload]
