"""The per-target circuit breaker really stops calling a target that keeps failing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.resilience import Breakers, CallPolicy, CircuitOpen, call_outbound
from tests.support.clock import FakeClock


async def test_breaker_opens_after_the_threshold_and_stops_calling() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("503")

    breakers = Breakers(failure_threshold=3, recovery_timeout=60, clock=FakeClock())
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await call_outbound("deploy-hook", failing, breakers=breakers)
    with pytest.raises(CircuitOpen, match="deploy-hook is failing since 09:00:00 UTC"):
        await call_outbound("deploy-hook", failing, breakers=breakers)
    assert calls == 3


async def test_after_the_cool_down_one_trial_call_goes_through_and_a_failure_reopens() -> None:
    clock = FakeClock()
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("503")

    breakers = Breakers(failure_threshold=2, recovery_timeout=60, clock=clock)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await call_outbound("hook", failing, breakers=breakers)
    clock.advance(timedelta(seconds=59))
    with pytest.raises(CircuitOpen):
        await call_outbound("hook", failing, breakers=breakers)
    clock.advance(timedelta(seconds=2))
    with pytest.raises(RuntimeError):  # the trial call reaches the target ...
        await call_outbound("hook", failing, breakers=breakers)
    with pytest.raises(CircuitOpen):  # ... and its failure opens the breaker again at once
        await call_outbound("hook", failing, breakers=breakers)
    assert calls == 3

    async def healthy() -> str:
        return "ok"

    clock.advance(timedelta(seconds=61))
    assert await call_outbound("hook", healthy, breakers=breakers) == "ok"
    assert not breakers.for_target("hook").is_open
    assert breakers.for_target("hook").failing_since is None


async def test_a_cancelled_call_is_not_retried() -> None:
    started = 0
    gate = asyncio.Event()

    async def slow() -> None:
        nonlocal started
        started += 1
        await gate.wait()

    task = asyncio.create_task(call_outbound("hook", slow, policy=CallPolicy(attempts=3, timeout=5), idempotent=True))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started == 1
