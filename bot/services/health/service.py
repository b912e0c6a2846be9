""" "Are we down?": rounds of health checks shared by everyone asking, and what surrounds them.

A round runs every service's check at once and is over no later than the largest timeout plus
`ROUND_SLACK` (and `UNWIND` for cancelled checks to let go), whatever the targets do. Concurrent
askers join the round in flight (single-flight) and a finished round is reused for
`health.cache_ttl`, so fifty people asking at once cost each target one request. The answer adds
the active freeze, the last deploys and open incidents from the other features (through
`ports`), looked up once per round alongside the checks and cached with it, each lookup bounded
so a slow one can only drop its own line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from bot.checks.base import CheckResult, Status
from bot.checks.probe import describe_error
from bot.clock import Clock
from bot.config import GuardrailConfig, ServiceConfig
from bot.services.changes.models import RecentChange, mark_related
from bot.services.health.models import HealthReport, HealthRound, StateChange, UnknownService
from bot.services.health.watch import HealthWatch
from bot.services.ports import (
    ActiveFreeze,
    ChangeLookup,
    DeployHistory,
    DeployInfo,
    FreezeLookup,
    IncidentLookup,
    OpenIncident,
    RollbackCheckLookup,
    RollbackCheckStatus,
)

log = logging.getLogger(__name__)

ROUND_SLACK = 0.25  # seconds a round may run past its largest check timeout
UNWIND = 0.1  # seconds a cancelled check gets to let go of its connection
CONTEXT_TIMEOUT = 0.75  # seconds for the freeze / deploy / incident lookups (never past the round's deadline)
MAX_DEPLOYS = 10

T = TypeVar("T")


class ServiceChecker(Protocol):
    async def check(self, service: ServiceConfig) -> CheckResult:
        """One measured attempt under the service's timeout; never raises."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class _Context:
    """The other features' facts fetched alongside a shared round (and cached with it)."""

    freeze: ActiveFreeze | None
    deploys: list[DeployInfo]
    incidents: list[OpenIncident]
    unavailable: list[str]
    rollback_check: RollbackCheckStatus | None = None
    changes: list[RecentChange] = field(default_factory=list)


class HealthService:
    """Health rounds for Slack, the incident playbook (`probe`) and the watcher."""

    def __init__(
        self,
        config: GuardrailConfig,
        checker: ServiceChecker,
        clock: Clock,
        *,
        watch: HealthWatch | None = None,
        freezes: FreezeLookup | None = None,
        deploys: DeployHistory | None = None,
        incidents: IncidentLookup | None = None,
        rollbacks: RollbackCheckLookup | None = None,
        changes: ChangeLookup | None = None,
    ) -> None:
        self._config = config
        self._checker = checker
        self._clock = clock
        self._watch = watch
        self.freezes = freezes
        self.deploys = deploys
        self.incidents = incidents
        self.rollbacks = rollbacks
        self.changes = changes
        self._inflight: asyncio.Task[tuple[HealthRound, _Context]] | None = None
        self._last: HealthRound | None = None
        self._last_context: _Context | None = None
        self._down_since: dict[str, datetime] = {}
        self._next_watch: dict[str, datetime] = {}

    @property
    def services(self) -> list[ServiceConfig]:
        return list(self._config.services)

    def _lookup(self, names: Sequence[str]) -> list[ServiceConfig]:
        unknown = [n for n in names if self._config.service(n) is None]
        if unknown:
            raise UnknownService(unknown, [s.name for s in self._config.services])
        return [s for n in names if (s := self._config.service(n)) is not None]

    # -- rounds ---------------------------------------------------------------------------------

    async def _run(self, services: Sequence[ServiceConfig]) -> HealthRound:
        """All checks at once; whatever has not answered by the round's deadline is down."""
        started = self._clock.now()
        if not services:
            return HealthRound((), started, started)
        limit = max(s.timeout.total_seconds() for s in services) + ROUND_SLACK
        tasks = [asyncio.create_task(self._checker.check(s), name=f"health:{s.name}") for s in services]
        try:
            _, pending = await asyncio.wait(tasks, timeout=limit)
        finally:
            # also when this round is cancelled: no check may outlive it
            await _cancel_all(tasks)
        results = []
        for service, task in zip(services, tasks, strict=True):
            if task in pending:
                result = CheckResult(service.name, Status.DOWN, None, f"no answer within {limit:g}s", started)
            elif task.exception() is not None:
                exc = task.exception()
                assert exc is not None
                result = CheckResult(service.name, Status.DOWN, None, describe_error(exc), started)
            else:
                result = task.result()
            results.append(self._track(result))
        return HealthRound(tuple(results), started, self._clock.now())

    def _track(self, result: CheckResult) -> CheckResult:
        """Remember since when a service is down; report it once it was down before this round."""
        if result.status is not Status.DOWN:
            self._down_since.pop(result.service, None)
            return result
        since = self._down_since.setdefault(result.service, result.checked_at)
        return replace(result, down_since=since) if since < result.checked_at else result

    async def _shared_round(self) -> tuple[HealthRound, _Context, bool]:
        """The fresh-enough finished round, or the one in flight, or a new one; and whether reused."""
        last, cached = self._last, self._last_context
        if last is not None and cached is not None and self._fresh(last):
            return last, cached, True
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._full_round(), name="health:round")
        # shield: one impatient asker going away must not cancel everyone's round
        health_round, context = await asyncio.shield(self._inflight)
        return health_round, context, False

    def _fresh(self, last: HealthRound) -> bool:
        return self._clock.now() - last.finished_at < self._config.health.cache_ttl

    async def _full_round(self) -> tuple[HealthRound, _Context]:
        """The checks and the surrounding lookups, once per round however many people ask."""
        environment = self._config.freeze.default_environment
        timeouts = [s.timeout.total_seconds() for s in self._config.services]
        context_limit = min(CONTEXT_TIMEOUT, max(timeouts, default=0.0) + ROUND_SLACK)
        lookups = asyncio.create_task(self._context(environment, context_limit), name="health:context")
        try:
            health_round = await self._run(self._config.services)
            context = await lookups
            self._last, self._last_context = health_round, context
            return health_round, context
        finally:
            lookups.cancel()
            self._inflight = None

    @property
    def last_round(self) -> HealthRound | None:
        """The most recent shared round (for diagnostics and the benchmark)."""
        return self._last

    async def probe(self, names: Sequence[str]) -> list[CheckResult]:
        """Run the named services' checks now (a fresh round, never a cached one).

        This is `ServiceProber.probe` for the incident playbook's `checks` action; an unknown
        name raises `UnknownService` (check-config rejects those in playbooks anyway).
        """
        return list((await self._run(self._lookup(names))).results)

    async def report(self, service: str | None = None) -> HealthReport:
        """The answer to "are we down?" (about one service when named); raises UnknownService."""
        wanted = self._lookup([service]) if service else None
        health_round, context, reused = await self._shared_round()
        return self._report(service, wanted, health_round, context, reused)

    def report_if_ready(self, service: str | None = None) -> HealthReport | None:
        """`report()` when a fresh shared round answers it (no check runs, nothing is awaited),
        else None; raises UnknownService. A Slack command can then answer in its acknowledgement."""
        wanted = self._lookup([service]) if service else None
        last, cached = self._last, self._last_context
        if last is None or cached is None or not self._fresh(last):
            return None
        return self._report(service, wanted, last, cached, True)

    def _report(
        self,
        service: str | None,
        wanted: list[ServiceConfig] | None,
        health_round: HealthRound,
        context: _Context,
        reused: bool,
    ) -> HealthReport:
        environment = self._config.freeze.default_environment
        deploys = context.deploys
        results = [r for r in health_round.results if wanted is None or r.service == service]
        changes = [r.change for r in context.changes]
        if service:
            deploys = [d for d in deploys if d.service == service]
            changes = [c for c in changes if service in c.services]
        return HealthReport(
            results=results,
            checked_at=health_round.finished_at,
            age=max(self._clock.now() - health_round.finished_at, timedelta(0)),
            reused=reused,
            environment=environment,
            freeze=context.freeze,
            deploys=deploys[:MAX_DEPLOYS],
            incidents=list(context.incidents),
            unavailable=list(context.unavailable),
            rollback_check=context.rollback_check,
            changes=mark_related(changes, results),
        )

    async def _context(self, environment: str, limit: float) -> _Context:
        """The other features' facts for the answer; a lookup that fails or dawdles is left out."""
        unavailable: list[str] = []

        async def guarded(name: str, call: Awaitable[T], empty: T) -> T:
            try:
                return await asyncio.wait_for(call, timeout=limit)
            except Exception as exc:
                log.warning("health answer: %s lookup failed: %s", name, describe_error(exc))
                unavailable.append(name)
                return empty

        no_deploys: list[DeployInfo] = []
        no_incidents: list[OpenIncident] = []
        no_changes: list[RecentChange] = []
        freeze, deploys, incidents, rollback_check, changes = await asyncio.gather(
            guarded("freeze", self._active_freeze(environment), None),
            guarded("deploys", self._last_deploys(environment), no_deploys),
            guarded("incidents", self._open_incidents(), no_incidents),
            guarded("rollback check", self._last_rollback_check(), None),
            guarded("changes", self._recent_changes(), no_changes),
        )
        return _Context(freeze, deploys, incidents, unavailable, rollback_check, changes)

    async def _active_freeze(self, environment: str) -> ActiveFreeze | None:
        return await self.freezes.active_window(environment) if self.freezes is not None else None

    async def _last_deploys(self, environment: str) -> list[DeployInfo]:
        return list(await self.deploys.recent(environment)) if self.deploys is not None else []

    async def _open_incidents(self) -> list[OpenIncident]:
        return list(await self.incidents.open_incidents()) if self.incidents is not None else []

    async def _recent_changes(self) -> list[RecentChange]:
        return list(await self.changes.recent()) if self.changes is not None else []

    async def _last_rollback_check(self) -> RollbackCheckStatus | None:
        return await self.rollbacks.last_rollback_check() if self.rollbacks is not None else None

    # -- watching -------------------------------------------------------------------------------

    @property
    def watch_interval(self) -> timedelta | None:
        """How often the watcher should tick: the shortest `watch_interval`, None if nothing is watched."""
        intervals = [s.watch_interval for s in self._config.services if s.watch]
        return min(intervals) if intervals else None

    async def watch_tick(self) -> list[StateChange]:
        """Check the watched services that are due; announce the changes this replica claimed."""
        if self._watch is None:
            return []
        now = self._clock.now()
        tick = self.watch_interval or timedelta(0)
        # A tick runs a little late or early (scheduler latency); a service whose interval equals
        # the tick must still be checked on every tick, so "due" allows half a tick of slack.
        due = [s for s in self._config.services if s.watch and self._next_watch.get(s.name, now) < now + tick / 2]
        if not due:
            return []
        for service in due:
            # advance from the previous due time, not from a jittered `now`, so lateness never accumulates
            following = self._next_watch.get(service.name, now) + service.watch_interval
            self._next_watch[service.name] = following if following > now else now + service.watch_interval
        results = (await self._run(due)).results
        # The watch announces what it claimed through the outbox, in the claim's own transaction.
        return await self._watch.observe(list(zip(due, results, strict=True)))

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        await self._checker.aclose()


async def _cancel_all(tasks: Sequence[asyncio.Task[T]]) -> None:
    """Cancel what is still running and let it unwind (bounded: a check that ignores cancellation
    is left behind rather than holding the caller)."""
    running = [t for t in tasks if not t.done()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=UNWIND)
