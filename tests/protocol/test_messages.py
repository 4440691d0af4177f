"""The message modules: one union per direction, which together file every message once."""

from __future__ import annotations

import typing

import pytest

from trident.protocol import messages as m
from trident.protocol.registry import MESSAGE_TYPES

#: Every group of `trident.protocol.messages`: the direction unions, the messages that
#: travel several ways (`Common`) and the records nested in others (`Record`).
GROUPS = {
    "Handshake": m.Handshake,
    "ClientToScheduler": m.ClientToScheduler,
    "SchedulerToClient": m.SchedulerToClient,
    "SchedulerToWorker": m.SchedulerToWorker,
    "WorkerToScheduler": m.WorkerToScheduler,
    "PeerToWorker": m.PeerToWorker,
    "WorkerToPeer": m.WorkerToPeer,
    "NannyToScheduler": m.NannyToScheduler,
    "SchedulerToNanny": m.SchedulerToNanny,
    "Common": m.Common,
    "Record": m.Record,
}


def trident_messages() -> list[type]:
    """The registered classes trident declares (tests may register classes of their own)."""
    return [
        cls
        for cls in MESSAGE_TYPES.values()
        if cls.__module__.startswith("trident.protocol.messages.")
    ]


def members(union: object) -> set[type]:
    return set(typing.get_args(union))


def test_every_message_belongs_to_exactly_one_group():
    declared = trident_messages()
    assert len(declared) > 100
    for cls in declared:
        homes = [name for name, union in GROUPS.items() if cls in members(union)]
        assert len(homes) == 1, f"{cls.__name__} is in {homes or 'no group'}"


def test_the_groups_hold_only_registered_messages():
    registered = set(trident_messages())
    for name, union in GROUPS.items():
        assert members(union) <= registered, name


@pytest.mark.parametrize("cls", trident_messages(), ids=lambda cls: cls.__name__)
def test_every_message_is_re_exported_under_its_name(cls):
    assert getattr(m, cls.__name__) is cls


def test_coordination_requests_go_from_client_to_scheduler():
    assert members(m.CoordinationRequest) < members(m.ClientToScheduler)
    assert m.Published in members(m.SchedulerToClient)
