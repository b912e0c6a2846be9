"""The one interface every health probe implements, and the runner that measures it.

A probe does one attempt against its target and either returns a few words of detail ("200",
"PONG", "3 queued, 0 failed, 1 worker") or raises `Unhealthy` with a short reason. The runner
owns everything else: the timeout (enforced by cancelling the attempt, so a hanging target can't
delay a round), latency, up/slow/down, and the per-target circuit breaker — all through
`bot.resilience`, with exactly one attempt (a health check measures; it does not insist).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from bot.checks.base import CheckResult, Status
from bot.clock import Clock
from bot.resilience import Breakers, CallPolicy, CircuitOpen, OutboundTimeout, call_outbound

REASON_LIMIT = 120


class Unhealthy(Exception):
    """The target answered, but not the way a healthy one does (or could not be reached)."""


class Probe(Protocol):
    """One kind of health check bound to one service's configuration."""

    @property
    def target(self) -> str:
        """Where it goes, without secrets (the circuit breaker's key)."""
        ...

    async def __call__(self) -> str:
        """One attempt: a short detail when healthy; raise `Unhealthy` (or anything) when not."""
        ...

    async def aclose(self) -> None:
        """Release connections; called when the probe is no longer needed."""
        ...


def short(text: str, limit: int = REASON_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error(exc: BaseException) -> str:
    """A few words for an exception: its message, or its type when it has none."""
    if isinstance(exc, Unhealthy | OutboundTimeout):
        return short(str(exc))
    message = str(exc).strip()
    return short(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


async def measure(
    service: str,
    probe: Probe,
    *,
    limit: float,
    slow_after: float | None,
    breakers: Breakers,
    clock: Clock,
    paused_reason: Callable[[datetime | None], str],
) -> CheckResult:
    """Run `probe` once, cancelled after `limit` seconds, under its breaker; never raises."""
    checked_at = clock.now()
    started = time.perf_counter()
    policy = CallPolicy(timeout=limit, attempts=1, deadline=limit)
    try:
        detail = await call_outbound(
            f"health:{service}:{probe.target}", probe, policy=policy, breakers=breakers, idempotent=False
        )
    except CircuitOpen as exc:
        return CheckResult(service, Status.DOWN, None, paused_reason(exc.failing_since), checked_at)
    except OutboundTimeout:
        latency = (time.perf_counter() - started) * 1000
        return CheckResult(service, Status.DOWN, latency, f"no answer within {limit:g}s", checked_at)
    except Exception as exc:
        latency = (time.perf_counter() - started) * 1000
        return CheckResult(service, Status.DOWN, latency, describe_error(exc), checked_at)
    latency = (time.perf_counter() - started) * 1000
    if latency >= limit * 1000:
        # a probe that swallowed its cancellation can still hand `wait_for` a late answer
        return CheckResult(service, Status.DOWN, latency, f"no answer within {limit:g}s", checked_at)
    if slow_after is not None and latency > slow_after * 1000:
        return CheckResult(
            service, Status.SLOW, latency, short(f"slower than {slow_after * 1000:g} ms ({detail})"), checked_at
        )
    return CheckResult(service, Status.UP, latency, short(detail), checked_at)
