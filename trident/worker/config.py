"""`WorkerConfig`: every setting of one worker, in one place.

`LocalCluster`, ``trident worker``, ``trident up`` and a `Nanny` all describe the worker
they start with a `WorkerConfig`; a worker process receives it serialized once
(`to_settings` / `from_settings`: plain JSON data, no secrets: the cluster token travels
in ``TRIDENT_TOKEN`` and TLS settings as file paths, both outside this type), and the
`Worker` is built from it with `Worker.from_config`. A setting added here is therefore
settable from every entry point at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import attrs

from ..comm.liveness import RECONNECT_TIMEOUT, SCHEDULER_TIMEOUT
from ..sizes import parse_duration, parse_memory
from .memory import MemoryThresholds

#: Seconds between a worker's heartbeats to the scheduler.
HEARTBEAT_INTERVAL = 1.0


def _threads(value: int) -> int:
    return max(1, int(value))


def _memory_limit(value: int | float | str | None) -> int:
    return parse_memory(value)


def _seconds(value: float | str | timedelta) -> float:
    return parse_duration(value)


def _optional_seconds(value: float | str | timedelta | None) -> float | None:
    return None if value is None else parse_duration(value)


def _resources(value: Mapping[str, float] | None) -> dict[str, float]:
    return {str(name): float(amount) for name, amount in (value or {}).items()}


def _preload(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def _environment(value: Mapping[str, Any] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"env must map variable names to values, got {value!r}")
    return {str(name): str(setting) for name, setting in value.items()}


def _thresholds(value: MemoryThresholds | Mapping[str, float | None]) -> MemoryThresholds:
    if isinstance(value, MemoryThresholds):
        return value
    return MemoryThresholds(**value)


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How to start one worker (dask.distributed's names where it has them).

    Attributes:
        nthreads: threads for sync task functions (also the number of task slots).
        name: a human-friendly name (default: the worker's address).
        memory_limit: bytes the worker should stay under; 0 for no limit (a string
            such as ``"4GB"`` is accepted).
        resources: abstract resources the worker offers, e.g. ``{"GPU": 1}``.
        listen_address: where to listen for peers (default: a free port on the
            interface that routes to the scheduler).
        contact_address: the address advertised to the scheduler and peers, when it
            differs from the listen address (NAT, port forwarding).
        local_directory: where the worker keeps its files (spilled results); default:
            the system's temporary directory.
        heartbeat_interval: seconds between heartbeats to the scheduler (or text such
            as ``"500ms"``).
        scheduler_timeout: seconds the scheduler may stay silent before the worker
            treats the connection as lost.
        reconnect_timeout: seconds the worker keeps trying to reach a lost scheduler
            before it stops.
        memory: the target, spill, pause and terminate fractions of `memory_limit`
            (terminate is the nanny's).
        preload: modules (names or ``.py`` files) run in the worker's process when it
            starts; a ``dask_setup(worker)`` or ``trident_setup(worker)`` they define
            is called with the `Worker`.
        log_level: the log level of a worker process's console.
        lifetime: seconds (or text such as ``"55m"``) after which the worker asks to be
            retired, its data moved to other workers first (dask's ``--lifetime``;
            for batch jobs, a little under the walltime). None: no limit.
        lifetime_stagger: the lifetime moves by a random amount within plus or minus
            this, so workers started together leave at different times.
        env: environment variables set in a worker process (dask's nanny ``env=``),
            over the thread-pool limits trident sets; values become strings. Workers
            in the caller's process share its environment and ignore it.

    Values are normalised on construction (``memory_limit="4GB"`` becomes bytes), so
    two configs with the same meaning compare equal.
    """

    nthreads: int = attrs.field(default=1, converter=_threads)
    name: str | None = None
    memory_limit: int = attrs.field(default=0, converter=_memory_limit)
    resources: dict[str, float] = attrs.field(factory=dict, converter=_resources)
    listen_address: str | None = None
    contact_address: str | None = None
    local_directory: str | None = None
    heartbeat_interval: float = attrs.field(default=HEARTBEAT_INTERVAL, converter=_seconds)
    scheduler_timeout: float = attrs.field(default=SCHEDULER_TIMEOUT, converter=_seconds)
    reconnect_timeout: float = attrs.field(default=RECONNECT_TIMEOUT, converter=_seconds)
    memory: MemoryThresholds = attrs.field(factory=MemoryThresholds, converter=_thresholds)
    preload: tuple[str, ...] = attrs.field(default=(), converter=_preload)
    log_level: str = "WARNING"
    lifetime: float | None = attrs.field(default=None, converter=_optional_seconds)
    lifetime_stagger: float = attrs.field(default=0.0, converter=_seconds)
    env: dict[str, str] = attrs.field(factory=dict, converter=_environment)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The settings' names, as keyword arguments of the constructor."""
        return frozenset(field.name for field in attrs.fields(cls))

    def to_settings(self) -> dict[str, Any]:
        """This config as JSON-safe data (the inverse of `from_settings`)."""
        settings = attrs.asdict(self, recurse=False)
        settings["memory"] = self.memory.as_settings()
        settings["preload"] = list(self.preload)
        return settings

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> WorkerConfig:
        """The config `to_settings` wrote. Raises `TypeError` for an unknown setting,
        `ValueError` for a value that is not one."""
        unknown = set(settings) - cls.option_names()
        if unknown:
            raise TypeError(f"unknown worker settings: {', '.join(sorted(unknown))}")
        return cls(**settings)
