"""Everything a running guardrail needs, built once and handed to Slack, HTTP, CLI and scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from bot.checks.runner import CheckRunner
from bot.clock import Clock, SystemClock
from bot.config import GuardrailConfig, LoadedConfig
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.services.audit import AuditLog
from bot.services.health import HealthService
from bot.services.health_watch import HealthWatch
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    loaded: LoadedConfig
    db: Database
    clock: Clock
    audit: AuditLog
    breakers: Breakers
    health: HealthService

    @property
    def config(self) -> GuardrailConfig:
        return self.loaded.config

    async def close(self) -> None:
        await self.health.aclose()
        await self.db.dispose()


def build_runtime(settings: Settings, loaded: LoadedConfig, *, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    breakers = Breakers(clock=clock)
    config = loaded.config
    # freezes / deploys / incidents: wired when those features are merged (see services.ports).
    health = HealthService(config, CheckRunner(breakers=breakers, clock=clock, tz=config.tz), clock,
                           watch=HealthWatch(db, clock), freezes=None, deploys=None, incidents=None)
    return Runtime(
        settings=settings,
        loaded=loaded,
        db=db,
        clock=clock,
        audit=AuditLog(db, clock),
        breakers=breakers,
        health=health,
    )
