"""How guardrail calls anything outside itself: one place owns timeouts, retries and breakers.

The incident guardrail exists for was made worse by unbounded retries. So here:
- every attempt has a timeout, and all attempts together have a deadline;
- only calls the caller declares idempotent are retried, a bounded number of times, with
  exponential backoff and full jitter (tenacity) so replicas don't retry in lock-step;
- each target has a circuit breaker (circuitbreaker): after `failure_threshold` consecutive
  failures it stops calling for `recovery_timeout`, then lets one trial call through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from circuitbreaker import CircuitBreaker, CircuitBreakerError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from bot.clock import Clock, SystemClock

T = TypeVar("T")


@dataclass(frozen=True)
class CallPolicy:
    """Limits for one logical outbound call."""

    timeout: float = 10.0      # seconds, per attempt
    attempts: int = 1          # total attempts; more than 1 only for idempotent calls
    backoff: float = 0.5       # first wait between attempts; grows exponentially, jittered
    max_backoff: float = 8.0
    deadline: float = 30.0     # seconds for all attempts together

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.attempts > 10:
            raise ValueError("attempts must be between 1 and 10")
        if self.timeout <= 0 or self.deadline <= 0:
            raise ValueError("timeout and deadline must be positive")


ONE_SHOT = CallPolicy()


class OutboundTimeout(Exception):
    """An attempt took longer than its policy allows."""

    def __init__(self, target: str, seconds: float) -> None:
        super().__init__(f"{target} did not answer within {seconds:g}s")
        self.target = target
        self.seconds = seconds


class CircuitOpen(Exception):
    """The target failed repeatedly; calls are paused until `retry_at`."""

    def __init__(self, target: str, failing_since: datetime | None, retry_at: datetime) -> None:
        since = f" since {failing_since:%H:%M:%S} UTC" if failing_since else ""
        super().__init__(f"{target} is failing{since}; calls paused until {retry_at:%H:%M:%S} UTC")
        self.target = target
        self.failing_since = failing_since
        self.retry_at = retry_at


@dataclass
class TargetBreaker:
    """A circuit breaker for one target, remembering since when it has been failing."""

    target: str
    breaker: CircuitBreaker
    clock: Clock
    failing_since: datetime | None = None
    last_error: str | None = None

    @property
    def is_open(self) -> bool:
        return bool(self.breaker.opened)

    def retry_at(self) -> datetime:
        return self.clock.now() + timedelta(seconds=float(self.breaker.open_remaining))

    async def call(self, func: Callable[[], Awaitable[T]]) -> T:
        # circuitbreaker only checks the open state in its decorator, not in call_async: check here.
        if self.breaker.opened:
            raise CircuitOpen(self.target, self.failing_since, self.retry_at())
        try:
            result: T = await self.breaker.call_async(func)
        except CircuitBreakerError:
            raise CircuitOpen(self.target, self.failing_since, self.retry_at()) from None
        except Exception as exc:
            if self.failing_since is None:
                self.failing_since = self.clock.now()
            self.last_error = str(exc) or type(exc).__name__
            raise
        self.failing_since = None
        self.last_error = None
        return result


@dataclass
class Breakers:
    """Per-target circuit breakers, created on first use."""

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    clock: Clock = field(default_factory=SystemClock)
    _by_target: dict[str, TargetBreaker] = field(default_factory=dict)

    def for_target(self, target: str) -> TargetBreaker:
        breaker = self._by_target.get(target)
        if breaker is None:
            cb = CircuitBreaker(failure_threshold=self.failure_threshold,
                                recovery_timeout=self.recovery_timeout, expected_exception=Exception,
                                name=f"guardrail:{target}")
            breaker = self._by_target[target] = TargetBreaker(target, cb, self.clock)
        return breaker


def _transient(exc: BaseException) -> bool:
    """Retry only what a later attempt might fix; never an open breaker."""
    return not isinstance(exc, CircuitOpen)


async def call_outbound(
    target: str,
    func: Callable[[], Awaitable[T]],
    *,
    policy: CallPolicy = ONE_SHOT,
    breakers: Breakers | None = None,
    idempotent: bool = False,
    retry_on: Callable[[BaseException], bool] = _transient,
) -> T:
    """Call `func` under `policy`: timeout per attempt, bounded jittered retries, breaker per target.

    Non-idempotent calls get exactly one attempt whatever the policy says: retrying a
    rollback that may already have happened is how a bot becomes the incident.
    """
    attempts = policy.attempts if idempotent else 1
    breaker = breakers.for_target(target) if breakers is not None else None

    async def attempt() -> T:
        try:
            return await asyncio.wait_for(func(), timeout=policy.timeout)
        except TimeoutError:
            raise OutboundTimeout(target, policy.timeout) from None

    async def guarded() -> T:
        return await (breaker.call(attempt) if breaker is not None else attempt())

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(policy.deadline),
        wait=wait_exponential_jitter(initial=policy.backoff, max=policy.max_backoff),
        retry=retry_if_exception(retry_on),
        reraise=True,
    )
    return await retrying(guarded)
