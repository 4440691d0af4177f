"""`Plugins`: registered worker, nanny and scheduler plugins (`trident._plugins`), sans-IO.

Worker and nanny plugins stay pickled here: the scheduler keeps the latest payload of
each name and sends it (`SetupPlugin`) to every worker or nanny connected at
registration, and to each one that registers later, right after its welcome (the
connection is ordered, so a worker's plugins are set up before its first task). The
client is answered (`PluginResults`) once every target connected at registration time
answered (`PluginDone`) or left. `TeardownPlugin` does the same for unregistering.

Scheduler plugins are live objects: the state machine never runs user code that may
block or await, so registering one is handed to the actor (`run_here`), which unpickles
it, awaits its ``start`` and adds it with `add_scheduler_plugin`. From then on the
state calls its event hooks synchronously (`add_worker`, `remove_worker`,
`add_client`, `remove_client`, `update_graph`, `transition`), logging what they raise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .._keys import decode_key
from .._plugins import NANNY, SCHEDULER, WORKER, SchedulerPlugin, call_quietly, overrides
from ..protocol import messages as m
from ..protocol.serialize import Serialized
from .nannies import Nannies, NannyRecord
from .records import ClientRecord, WorkerRecord
from .story import TaskStory

KINDS = (WORKER, NANNY, SCHEDULER)


@attrs.define(eq=False)
class PendingPluginCall:
    """A `RegisterPlugin` or `UnregisterPlugin` waiting for its workers or nannies."""

    client_id: str
    request_id: int
    #: peer id (worker address or nanny id) -> the label its result goes under
    waiting: dict[str, str]
    results: dict[str, m.ErrorInfo | None] = attrs.Factory(dict)


class Plugins:
    """The registered plugins of a cluster, and registrations in progress."""

    def __init__(
        self,
        workers: Mapping[str, WorkerRecord],
        nannies: Nannies,
        story: TaskStory,
        send: Callable[[str, Any], None],
        error_info: Callable[[BaseException], m.ErrorInfo],
    ):
        self._workers = workers
        self._nannies = nannies
        self._story = story
        self._send = send
        self._error_info = error_info
        #: pickled plugins by name, in registration order, for each kind sent to peers
        self.payloads: dict[str, dict[str, Serialized]] = {WORKER: {}, NANNY: {}}
        #: live scheduler plugins by name (added by the actor)
        self.scheduler_plugins: dict[str, Any] = {}
        #: the object handed to scheduler plugins' hooks (the `Scheduler` actor)
        self.scheduler: Any = None
        #: carries out a scheduler-plugin `RegisterPlugin` / `UnregisterPlugin` for the
        #: client id given; set by the scheduler actor
        self.run_here: Callable[[str, Any], None] | None = None
        self.pending: dict[int, PendingPluginCall] = {}
        self._ids = itertools.count(1)
        self._watching: list[Any] = []
        nannies.add_handler(m.PluginDone, self._on_nanny_done)

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        return {m.RegisterPlugin: self._on_register, m.UnregisterPlugin: self._on_unregister}

    # --- requests from clients ------------------------------------------------------------

    def _answer(self, client_id: str, request_id: int, error: BaseException | None) -> None:
        info = self._error_info(error) if error is not None else None
        self._send(client_id, m.PluginResults(request_id, {}, info))

    def _on_register(self, cs: ClientRecord, msg: m.RegisterPlugin) -> None:
        if msg.kind not in KINDS:
            self._answer(cs.client_id, msg.request_id, ValueError(f"no plugin kind {msg.kind!r}"))
            return
        if msg.kind == SCHEDULER:
            if msg.idempotent and msg.name in self.scheduler_plugins:
                self._answer(cs.client_id, msg.request_id, None)
            else:
                self._hand_to_actor(cs, msg)
            return
        payloads = self.payloads[msg.kind]
        if msg.idempotent and msg.name in payloads:
            self._answer(cs.client_id, msg.request_id, None)
            return
        payloads.pop(msg.name, None)
        payloads[msg.name] = msg.plugin
        self._broadcast(
            cs, msg.request_id, msg.kind, lambda r: m.SetupPlugin(r, msg.name, msg.plugin)
        )

    def _on_unregister(self, cs: ClientRecord, msg: m.UnregisterPlugin) -> None:
        if msg.kind not in KINDS:
            self._answer(cs.client_id, msg.request_id, ValueError(f"no plugin kind {msg.kind!r}"))
            return
        known = self.scheduler_plugins if msg.kind == SCHEDULER else self.payloads[msg.kind]
        if msg.name not in known:
            error = ValueError(f"the {msg.kind} plugin {msg.name!r} does not exist")
            self._answer(cs.client_id, msg.request_id, error)
            return
        if msg.kind == SCHEDULER:
            self._hand_to_actor(cs, msg)
            return
        del self.payloads[msg.kind][msg.name]
        self._broadcast(cs, msg.request_id, msg.kind, lambda r: m.TeardownPlugin(r, msg.name))

    def _hand_to_actor(self, cs: ClientRecord, msg: m.RegisterPlugin | m.UnregisterPlugin) -> None:
        if self.run_here is None:
            error = RuntimeError("this scheduler runs no plugins (no scheduler actor)")
            self._answer(cs.client_id, msg.request_id, error)
        else:
            self.run_here(cs.client_id, msg)

    def _targets(self, kind: str) -> dict[str, str]:
        """Peer id -> result label of every worker (or nanny) connected now."""
        if kind == WORKER:
            return {address: address for address in self._workers}
        return {nid: n.worker_address or nid for nid, n in self._nannies.records.items()}

    def _broadcast(
        self, cs: ClientRecord, request_id: int, kind: str, build: Callable[[int], Any]
    ) -> None:
        relay = next(self._ids)
        pending = PendingPluginCall(cs.client_id, request_id, self._targets(kind))
        message = build(relay)
        for peer in pending.waiting:
            self._send(peer, message)
        self.pending[relay] = pending
        self._finish(relay)

    # --- answers from workers and nannies --------------------------------------------------

    def on_worker_done(self, ws: WorkerRecord, msg: m.PluginDone) -> None:
        self._done(ws.address, msg)

    def _on_nanny_done(self, nanny: NannyRecord, msg: m.PluginDone) -> None:
        self._done(nanny.nanny_id, msg)

    def _done(self, peer: str, msg: m.PluginDone) -> None:
        pending = self.pending.get(msg.request)
        if pending is None:
            return
        label = pending.waiting.pop(peer, None)
        if label is not None:
            pending.results[label] = msg.error
        self._finish(msg.request)

    def _finish(self, relay: int) -> None:
        pending = self.pending[relay]
        if pending.waiting:
            return
        del self.pending[relay]
        results = dict(sorted(pending.results.items()))
        self._send(pending.client_id, m.PluginResults(pending.request_id, results, None))

    # --- membership ------------------------------------------------------------------------

    def peer_added(self, peer: str, kind: str) -> None:
        """Send every registered plugin of `kind` to a worker or nanny that just
        registered (nobody waits for its answers)."""
        for name, payload in self.payloads[kind].items():
            self._send(peer, m.SetupPlugin(0, name, payload))

    def peer_removed(self, peer: str) -> None:
        """A worker or nanny left: registrations stop waiting for it."""
        for relay, pending in list(self.pending.items()):
            if peer in pending.waiting:
                del pending.waiting[peer]
                self._finish(relay)

    def client_removed(self, client_id: str) -> None:
        for relay, pending in list(self.pending.items()):
            if pending.client_id == client_id:
                del self.pending[relay]

    # --- scheduler plugins -----------------------------------------------------------------

    def add_scheduler_plugin(self, name: str, plugin: Any) -> None:
        """Add a started scheduler plugin (replacing one of the same name: the caller
        closed that one)."""
        self.remove_scheduler_plugin(name)
        self.scheduler_plugins[name] = plugin
        self._rewatch()

    def remove_scheduler_plugin(self, name: str) -> Any:
        """Drop a scheduler plugin (the caller closes it); return it (None if unknown)."""
        plugin = self.scheduler_plugins.pop(name, None)
        if plugin is not None:
            self._rewatch()
        return plugin

    def _rewatch(self) -> None:
        self._watching = [
            p
            for p in self.scheduler_plugins.values()
            if overrides(p, "transition", SchedulerPlugin)
        ]
        observers = self._story.observers
        if self._watching and self._observe not in observers:
            observers.append(self._observe)
        elif not self._watching and self._observe in observers:
            observers.remove(self._observe)

    def _observe(self, key: str, start: str, finish: str, stimulus_id: Any) -> None:
        decoded = decode_key(key)
        for plugin in self._watching:
            call_quietly(plugin, "transition", decoded, start, finish, stimulus_id=stimulus_id)

    def _each(self, hook: str, **kwargs: Any) -> None:
        for plugin in list(self.scheduler_plugins.values()):
            call_quietly(plugin, hook, scheduler=self.scheduler, **kwargs)

    def worker_added(self, address: str) -> None:
        self.peer_added(address, WORKER)
        if self.scheduler_plugins:
            self._each("add_worker", worker=address)

    def worker_removed(self, address: str, reason: str) -> None:
        self.peer_removed(address)
        if self.scheduler_plugins:
            self._each("remove_worker", worker=address, reason=reason)

    def client_added(self, client_id: str) -> None:
        if self.scheduler_plugins:
            self._each("add_client", client=client_id)

    def client_gone(self, client_id: str) -> None:
        self.client_removed(client_id)
        if self.scheduler_plugins:
            self._each("remove_client", client=client_id)

    def graph_updated(self, client_id: str, msg: m.UpdateGraph) -> None:
        """A client submitted tasks (call only when there are scheduler plugins)."""
        keys = {decode_key(spec.key) for spec in msg.tasks}
        self._each("update_graph", client=client_id, keys=keys)
