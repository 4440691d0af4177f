"""`reconnect`: what is retried, what ends the attempts, and what the failure says."""

from __future__ import annotations

import logging

import pytest
import trio

from trident.comm import handshake, liveness
from trident.comm.liveness import ReconnectFailed, reconnect

logger = logging.getLogger("test-reconnect")


async def test_resets_timeouts_and_unproven_servers_are_retried_until_success(monkeypatch):
    monkeypatch.setattr(liveness, "FIRST_RETRY_DELAY", 0.01)
    failures = [
        ConnectionResetError("reset by peer"),
        ConnectionRefusedError("refused"),
        TimeoutError(),
        handshake.HandshakeInterrupted("x closed the connection during the handshake"),
        handshake.AuthenticationError("the server could not prove it knows the cluster token"),
        handshake.ServerRefused("refused: invalid cluster token", proven=False),
    ]

    async def attempt():
        if failures:
            raise failures.pop(0)
        return "connected"

    with trio.fail_after(10):
        assert await reconnect(attempt, within=30, what="test", logger=logger) == "connected"
    assert failures == []


async def test_only_a_proven_refusal_ends_the_attempts_at_once():
    calls = 0

    async def attempt():
        nonlocal calls
        calls += 1
        raise handshake.ServerRefused("refused: unknown role", proven=True)

    with trio.fail_after(5), pytest.raises(ReconnectFailed, match="refused us") as info:
        await reconnect(attempt, within=30, what="test", logger=logger)
    assert calls == 1
    assert info.value.refused


async def test_the_failure_states_the_real_elapsed_time_and_the_last_cause():
    async def attempt():
        raise ConnectionResetError("reset by peer")

    start = trio.current_time()
    with trio.fail_after(10), pytest.raises(ReconnectFailed) as info:
        await reconnect(attempt, within=0.5, what="test", logger=logger)
    elapsed = trio.current_time() - start
    failure = info.value
    assert 0.5 <= failure.elapsed <= elapsed  # tried for the whole time, no less
    assert failure.attempts >= 2
    assert not failure.refused
    assert f"tried for {failure.elapsed:.1f} s" in str(failure)
    assert "ConnectionResetError: reset by peer" in str(failure)


async def test_a_hanging_attempt_is_cut_at_the_deadline():
    async def attempt():
        await trio.sleep_forever()

    with trio.fail_after(10), pytest.raises(ReconnectFailed, match="timed out"):
        await reconnect(attempt, within=0.3, what="test", logger=logger)
