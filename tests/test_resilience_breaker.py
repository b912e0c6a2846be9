"""The per-target circuit breaker really stops calling a target that keeps failing."""

from __future__ import annotations

import pytest

from bot.resilience import Breakers, CircuitOpen, call_outbound
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
