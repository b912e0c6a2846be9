"""Everything a running guardrail needs, built once and handed to Slack, HTTP, CLI and scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.config import GuardrailConfig, LoadedConfig
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.services.audit import AuditLog
from bot.services.incidents import IncidentService
from bot.services.incidents.unavailable import playbook_actions
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    loaded: LoadedConfig
    db: Database
    clock: Clock
    audit: AuditLog
    breakers: Breakers
    incidents: IncidentService

    @property
    def config(self) -> GuardrailConfig:
        return self.loaded.config

    async def close(self) -> None:
        await self.db.dispose()


def build_runtime(settings: Settings, loaded: LoadedConfig, *, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    breakers = Breakers(clock=clock)
    secrets = {"heroku_api_token": settings.heroku_api_token.get_secret_value()} if settings.heroku_api_token else {}
    # After the merge pass, all optional: freezes=<the freeze service> (FreezeLookup),
    # prober=<the health service> (ServiceProber), and freezer=<an adapter implementing
    # bot.services.incidents.IncidentFreezer> for `freeze.on_incident`.
    incidents = IncidentService(db, clock, loaded.config, playbook_actions(), breakers, secrets=secrets,
                                endpoints={"heroku_api_url": settings.heroku_api_url})
    return Runtime(
        settings=settings,
        loaded=loaded,
        db=db,
        clock=clock,
        audit=AuditLog(db, clock),
        breakers=breakers,
        incidents=incidents,
    )
