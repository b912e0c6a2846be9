"""Everything a running guardrail needs, built once and handed to Slack, HTTP, CLI and scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.config import GuardrailConfig, LoadedConfig
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.services.audit import AuditLog
from bot.services.freeze import FreezeService
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    loaded: LoadedConfig
    db: Database
    clock: Clock
    audit: AuditLog
    breakers: Breakers
    freezes: FreezeService

    @property
    def config(self) -> GuardrailConfig:
        return self.loaded.config

    async def close(self) -> None:
        await self.db.dispose()


def build_runtime(settings: Settings, loaded: LoadedConfig, *, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    return Runtime(
        settings=settings,
        loaded=loaded,
        db=db,
        clock=clock,
        audit=AuditLog(db, clock),
        breakers=Breakers(clock=clock),
        freezes=FreezeService(db, clock, loaded.config),
    )
