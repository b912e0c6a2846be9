"""How guardrail calls anything outside itself: one place owns timeouts, retries and breakers.

The incident guardrail exists for was made worse by unbounded retries. So here:
- every attempt has a timeout, and all attempts together have a deadline;
- only calls the caller declares idempotent are retried, a bounded number of times, with
  exponential backoff and full jitter (tenacity) so replicas don't retry in lock-step;
- each target has a circuit breaker: after `failure_threshold` consecutive
  failures it stops calling for `recovery_timeout`, then lets one trial call through.

One exception to "retry briefly": writing down an effect that already happened outside guardrail
(`RECORD_OUTCOME`). The effect cannot be taken back, so its record is retried for minutes — but
only on errors a later attempt can fix (the caller's `retry_on`; a bad row fails at once).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from bot.clock import Clock, SystemClock

T = TypeVar("T")


MAX_ATTEMPTS = 10  # any policy
MAX_RECORD_ATTEMPTS = 100  # only a policy that records an effect that already happened (`records_outcome`)


@dataclass(frozen=True)
class CallPolicy:
    """Limits for one logical outbound call."""

    timeout: float = 10.0  # seconds, per attempt
    attempts: int = 1  # total attempts; more than 1 only for idempotent calls
    backoff: float = 0.5  # first wait between attempts; grows exponentially, jittered
    max_backoff: float = 8.0
    deadline: float = 30.0  # seconds for all attempts together
    records_outcome: bool = False  # writes down an effect that already happened: may retry for longer

    def __post_init__(self) -> None:
        cap = MAX_RECORD_ATTEMPTS if self.records_outcome else MAX_ATTEMPTS
        if self.attempts < 1 or self.attempts > cap:
            raise ValueError(f"attempts must be between 1 and {cap}")
        if self.timeout <= 0 or self.deadline <= 0:
            raise ValueError("timeout and deadline must be positive")


ONE_SHOT = CallPolicy()

# Recording the result of an action that already ran (a playbook step's outcome and its audit
# entry, one transaction). The write is conditional on the run, so repeating it is safe, and losing
# it means nobody knows what production got: keep trying for three minutes — longer than a
# database failover or restart — at most 5 s apart once the database is back. Callers pass a
# `retry_on` that admits only connection trouble: a permanent error is not worth three minutes.
RECORD_OUTCOME = CallPolicy(
    timeout=10.0, attempts=MAX_RECORD_ATTEMPTS, backoff=0.5, max_backoff=5.0, deadline=180.0, records_outcome=True
)


class DatabaseTimeout(TimeoutError):
    """The database did not answer within its bound (bot.db.engine has reset its pool).

    Defined here, not in bot.db, so that services can recognise it without importing SQLAlchemy."""


class OutboundTimeout(Exception):
    """An attempt took longer than its policy allows."""

    def __init__(self, target: str, seconds: float) -> None:
        super().__init__(f"{target} did not answer within {seconds:g}s")
        self.target = target


class CircuitOpen(Exception):
    """The target failed repeatedly; calls are paused until `retry_at`."""

    def __init__(self, target: str, failing_since: datetime | None, retry_at: datetime) -> None:
        since = f" since {failing_since:%H:%M:%S} UTC" if failing_since else ""
        super().__init__(f"{target} is failing{since}; calls paused until {retry_at:%H:%M:%S} UTC")
        self.target = target
        self.failing_since = failing_since


@dataclass
class TargetBreaker:
    """A circuit breaker for one target, on the injected clock.

    Closed: calls go through; `failure_threshold` consecutive failures open it. Open: calls are
    refused with `CircuitOpen` until `recovery_timeout` has passed. Then one trial call goes
    through (half-open): success closes the breaker, failure opens it for another cool-down.
    (Hand-written rather than the `circuitbreaker` package: its `call_async` never checked the open
    state, and it reads `time.monotonic()`, so cool-downs could not follow an injected clock.)
    """

    target: str
    failure_threshold: int
    recovery_timeout: timedelta
    clock: Clock
    failures: int = 0
    opened_at: datetime | None = None
    failing_since: datetime | None = None
    _trial_in_flight: bool = False

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self.clock.now() < self.retry_at()

    def retry_at(self) -> datetime:
        opened = self.opened_at or self.clock.now()
        return opened + self.recovery_timeout

    async def call(self, func: Callable[[], Awaitable[T]]) -> T:
        half_open = self.opened_at is not None and not self.is_open
        if self.is_open or (half_open and self._trial_in_flight):
            raise CircuitOpen(self.target, self.failing_since, self.retry_at())
        self._trial_in_flight = half_open
        try:
            result = await func()
        except Exception:
            self._failed()
            raise
        finally:
            if half_open:
                self._trial_in_flight = False
        self.failures, self.opened_at, self.failing_since = 0, None, None
        return result

    def _failed(self) -> None:
        now = self.clock.now()
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = now  # (re)open: a failed trial starts another cool-down


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
            breaker = self._by_target[target] = TargetBreaker(
                target, self.failure_threshold, timedelta(seconds=self.recovery_timeout), self.clock
            )
        return breaker

    def targets(self) -> list[TargetBreaker]:
        """Every breaker made so far (for metrics)."""
        return list(self._by_target.values())


async def give_up_after(seconds: float, awaitable: Awaitable[T]) -> T:
    """The awaitable's result, or `TimeoutError` after `seconds` — at once, without waiting for the
    cut work to finish being cancelled (a PostgreSQL query being cancelled can take psycopg's own
    cleanup several seconds more). The work is cancelled and left to end in the background."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        raise TimeoutError(f"no answer within {seconds:g}s")
    return task.result()


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def reconnect_delays(*, initial: float, maximum: float) -> Iterator[float]:
    """Waits between attempts to re-establish a long-lived connection (Socket Mode): exponential,
    capped, with full jitter so replicas that lost Slack together don't reconnect together."""
    ceiling = initial
    while True:
        yield random.uniform(initial / 2, ceiling)
        ceiling = min(ceiling * 2, maximum)


def _transient(exc: BaseException) -> bool:
    """Retry only what a later attempt might fix: never an open breaker, and never a cancellation
    (tenacity sees BaseException; retrying a cancelled call would outlive whoever cancelled it)."""
    return isinstance(exc, Exception) and not isinstance(exc, CircuitOpen)


async def call_outbound(
    target: str,
    func: Callable[[], Awaitable[T]],
    *,
    policy: CallPolicy = ONE_SHOT,
    breakers: Breakers | None = None,
    idempotent: bool = False,
    retry_on: Callable[[BaseException], bool] = _transient,
    on_retry: Callable[[BaseException], Awaitable[None]] | None = None,
) -> T:
    """Call `func` under `policy`: timeout per attempt, bounded jittered retries, breaker per target.

    Non-idempotent calls get exactly one attempt whatever the policy says: retrying a
    rollback that may already have happened is how a bot becomes the incident. `on_retry` hears
    each failure that will be retried (before the wait).
    """
    attempts = policy.attempts if idempotent else 1
    breaker = breakers.for_target(target) if breakers is not None else None

    async def attempt() -> T:
        # `give_up_after`, not `asyncio.wait_for`: wait_for also waits for the cut attempt to finish
        # being cancelled — a query on a silent connection can take the driver's cleanup seconds more.
        try:
            return await give_up_after(policy.timeout, func())
        except TimeoutError:
            raise OutboundTimeout(target, policy.timeout) from None

    async def guarded() -> T:
        return await (breaker.call(attempt) if breaker is not None else attempt())

    async def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        if on_retry is not None and failure is not None:
            await on_retry(failure)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(policy.deadline),
        wait=wait_exponential_jitter(multiplier=policy.backoff, max=policy.max_backoff),
        retry=retry_if_exception(retry_on),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(guarded)
