"""What the client moves straight between itself and the workers, past the scheduler.

Results are gathered from the workers that hold them (the scheduler only says who has
what), scattered data is put on workers directly and then registered with the
scheduler, and each worker is asked for its logs. Every coroutine here takes the
`ClientCore` whose worker connections it uses and runs in that core's event loop.

Workers are chosen by address or by name (`resolve_workers`); a worker that cannot be
reached is skipped when gathering or reading logs, and fails a scatter.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import FutureLostError, SchedulerError
from .._unique import unique_hex
from ..comm.rpc import PeerUnavailable
from ..protocol import messages as m
from ..protocol.serialize import Serialized, dumps, token_of
from .future import FINISHED, PENDING, FutureState

if TYPE_CHECKING:
    from .core import ClientCore

logger = logging.getLogger("trident.client")

#: How often a gather retries keys whose data moved or was lost before giving up.
GATHER_ATTEMPTS = 20


async def gather_values(
    core: ClientCore, states: list[FutureState], errors: str = "raise", *, localize: bool = True
) -> dict[str, Any]:
    """The values of `states` by key, waiting for those still pending.

    With ``errors="raise"`` the first erred, cancelled or lost state raises its
    exception; with ``"skip"`` it is left out. Values held only by workers are fetched
    from them, retrying keys whose data moved; raises `FutureLostError` if some still
    cannot be found after `GATHER_ATTEMPTS` tries. With `localize`, values that bind to
    a client (actor handles) bind to `core`'s. A checkpoint when anything is awaited.
    """
    results: dict[str, Any] = {}
    todo = list({id(fs): fs for fs in states}.values())
    for attempt in range(GATHER_ATTEMPTS + 1):
        remote = []
        for fs in todo:
            if fs.status == PENDING:
                await fs.wait()
            if fs.status == FINISHED:
                if fs.payload is not None:
                    results[fs.key] = core.load(fs.payload, localize=localize)
                else:
                    remote.append(fs)
            elif errors == "raise":
                raise fs.exception_object()
        if not remote:
            return results
        results.update(await _fetch(core, [fs.key for fs in remote], localize))
        todo = [fs for fs in remote if fs.key not in results]
        if not todo:
            return results
        await anyio.sleep(min(0.005 * 2**attempt, 0.5))
    raise FutureLostError(f"could not gather {[fs.key for fs in todo][:10]} from any worker")


async def _fetch(core: ClientCore, keys: list[str], localize: bool) -> dict[str, Any]:
    """Fetch values straight from the workers that hold them; missing keys are absent."""
    who_has = await core.request(lambda rid: m.WhoHasRequest(rid, keys))
    by_worker: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        holders = who_has.get(key) or []
        if holders:
            by_worker[random.choice(holders)].append(key)
    results: dict[str, Any] = {}
    peers = core.peers

    async def fetch_from(address: str, worker_keys: list[str]) -> None:
        try:
            reply = await peers.request(address, lambda rid: m.GetData(rid, worker_keys))
        except PeerUnavailable as exc:
            logger.info("client: cannot fetch from %s: %s", address, exc)
            return
        # Each payload goes as soon as its value is made: values that do not share its
        # buffers (most objects but arrays) would otherwise be held twice until the end.
        data = reply.data
        del reply
        while data:
            key, payload = data.popitem()
            results[key] = core.load(payload, localize=localize)

    async with anyio.create_task_group() as tg:
        for address, worker_keys in by_worker.items():
            tg.start_soon(fetch_from, address, worker_keys)
    return results


async def scatter(
    core: ClientCore,
    values: list[Any],
    keys: list[str] | None,
    *,
    hash: bool,
    workers: list[str] | None,
    broadcast: bool,
    timeout: float | None,
) -> list[FutureState]:
    """Store `values` on workers directly and register them with the scheduler.

    Keys default to the type name and a content hash (`hash`) or a random id. Each
    value goes to one of the chosen `workers` in turn, or to all with `broadcast`.
    Returns the finished states, one reference each. Raises `RuntimeError` unless the
    client runs, `TimeoutError` if no worker joins within `timeout` seconds,
    `ValueError` if no worker matches `workers`, and `SchedulerError` if a worker
    refuses the data.
    """
    core.check_running()
    payloads = [dumps(value) for value in values]
    if keys is None:
        keys = [
            f"{type(value).__name__}-" + (token_of(p.header, *p.buffers) if hash else unique_hex())
            for value, p in zip(values, payloads, strict=True)
        ]
    await core.wait_for_workers(1, timeout)
    targets = resolve_workers(core.workers, workers)
    placement: dict[str, dict[str, Serialized]] = defaultdict(dict)
    who_has: dict[str, list[str]] = defaultdict(list)
    offset = random.randrange(len(targets))
    for i, (key, payload) in enumerate(zip(keys, payloads, strict=True)):
        chosen = targets if broadcast else [targets[(offset + i) % len(targets)]]
        for address in chosen:
            placement[address][key] = payload
            who_has[key].append(address)
    nbytes: dict[str, int] = {}
    peers = core.peers

    async def put(address: str, data: dict[str, Serialized]) -> None:
        reply = await peers.request(address, lambda rid: m.PutData(rid, data))
        if reply.error is not None:
            raise SchedulerError(f"worker {address} refused scattered data: {reply.error}")
        nbytes.update(reply.value)

    async with anyio.create_task_group() as tg:
        for address, data in placement.items():
            tg.start_soon(put, address, data)
    type_names = {key: type(value).__qualname__ for key, value in zip(keys, values, strict=True)}
    return core.add_finished(list(keys), type_names, nbytes, dict(who_has))


async def worker_logs(
    core: ClientCore, n: int | None, workers: list[str] | None
) -> dict[str, list[tuple[str, str]]]:
    """Each chosen worker's last `n` log records, ``{address: [(level, text), ...]}``.

    Unreachable workers are left out. Raises `RuntimeError` unless the client runs and
    `ValueError` if no worker matches `workers`.
    """
    core.check_running()
    targets = resolve_workers(core.workers, workers)
    peers = core.peers
    logs: dict[str, list[tuple[str, str]]] = {}

    async def ask(address: str) -> None:
        try:
            reply = await peers.request(address, lambda rid: m.LogsRequest(rid, n))
        except PeerUnavailable as exc:
            logger.info("client: cannot get the logs of %s: %s", address, exc)
            return
        if isinstance(reply, m.Reply) and reply.error is None:
            logs[address] = [(level, text) for level, text in reply.value]

    async with anyio.create_task_group() as tg:
        for address in targets:
            tg.start_soon(ask, address)
    return {address: logs[address] for address in targets if address in logs}


def resolve_workers(known: dict[str, m.WorkerInfo], wanted: list[str] | None) -> list[str]:
    """The addresses of the `known` workers that `wanted` names (by address or name).

    None or empty wants every known worker. Raises `ValueError` if none matches.
    """
    if not wanted:
        return list(known)
    chosen = [
        address for address, info in known.items() if address in wanted or info.name in wanted
    ]
    if not chosen:
        raise ValueError(f"no connected worker matches {wanted}")
    return chosen
