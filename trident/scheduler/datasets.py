"""`DatasetState`: published datasets and the metadata tree, sans-IO.

Datasets are named stored values shared between clients (`Client.publish_dataset`); a
published `Future` keeps its key alive until the dataset is unpublished or replaced.
Metadata (`Client.set_metadata`) is a tree of dicts with string keys whose leaves are
pickled values; a list of keys walks the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol import messages as m
from .holds import KeyHolds
from .records import ClientRecord

Send = Callable[[str, Any], None]


class DatasetState:
    """Every published dataset and the metadata of one scheduler."""

    def __init__(self, send: Send, holds: KeyHolds):
        self._send = send
        self._holds = holds
        #: name -> (the value, the keys held for it)
        self.datasets: dict[str, tuple[m.StoredValue, list[str]]] = {}
        self.metadata: dict[str, Any] = {}

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages this state handles, for `SchedulerState`."""
        return {
            m.PublishDatasets: self._on_publish,
            m.UnpublishDataset: self._on_unpublish,
            m.GetDataset: self._on_get,
            m.ListDatasets: self._on_list,
            m.SetMetadata: self._on_set_metadata,
            m.GetMetadata: self._on_get_metadata,
        }

    def _reply(self, client_id: str, request_id: int, value: Any) -> None:
        self._send(client_id, m.Reply(request_id, value, None))

    # --- datasets ------------------------------------------------------------------------

    def _on_publish(self, cs: ClientRecord, msg: m.PublishDatasets) -> None:
        existing = sorted(name for name in msg.datasets if name in self.datasets)
        if existing and not msg.override:
            self._reply(cs.client_id, msg.request_id, existing)
            return
        for name, value in msg.datasets.items():
            old = self.datasets.get(name)
            self.datasets[name] = (value, self._holds.hold(value.keys))
            if old is not None:
                self._holds.release(old[1])
        self._reply(cs.client_id, msg.request_id, [])

    def _on_unpublish(self, cs: ClientRecord, msg: m.UnpublishDataset) -> None:
        for name in msg.names:
            old = self.datasets.pop(name, None)
            if old is not None:
                self._holds.release(old[1])
        self._reply(cs.client_id, msg.request_id, None)

    def _on_get(self, cs: ClientRecord, msg: m.GetDataset) -> None:
        found = self.datasets.get(msg.name)
        if found is None:
            self._reply(cs.client_id, msg.request_id, None)
            return
        value, held = found
        handoff = self._holds.hand_off_copy(cs.client_id, held)
        self._reply(cs.client_id, msg.request_id, [value.payload, value.keys, handoff])

    def _on_list(self, cs: ClientRecord, msg: m.ListDatasets) -> None:
        self._reply(cs.client_id, msg.request_id, sorted(self.datasets))

    # --- metadata ------------------------------------------------------------------------

    def _on_set_metadata(self, cs: ClientRecord, msg: m.SetMetadata) -> None:
        if not msg.keys:
            self._send(cs.client_id, m.Reply(msg.request_id, None, "metadata needs a key"))
            return
        node = self.metadata
        for key in msg.keys[:-1]:
            child = node.get(key)
            if type(child) is not dict:
                child = node[key] = {}
            node = child
        node[msg.keys[-1]] = msg.value
        self._reply(cs.client_id, msg.request_id, None)

    def _on_get_metadata(self, cs: ClientRecord, msg: m.GetMetadata) -> None:
        node: Any = self.metadata
        for key in msg.keys:
            if type(node) is not dict or key not in node:
                self._reply(cs.client_id, msg.request_id, [False, None])
                return
            node = node[key]
        self._reply(cs.client_id, msg.request_id, [True, node])
