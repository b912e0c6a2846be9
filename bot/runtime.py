"""Everything a running guardrail needs, built once and handed to Slack, HTTP, CLI and scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from bot.actions import build_action, build_undo
from bot.actions.environment import action_endpoints, action_secrets
from bot.checks.runner import CheckRunner
from bot.clock import Clock, SystemClock
from bot.config import GuardrailConfig, LoadedConfig
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.services.access import Responders
from bot.services.audit import AuditLog
from bot.services.freeze import FreezeService
from bot.services.health import HealthService
from bot.services.health_watch import HealthWatch
from bot.services.incident_freezes import FreezeForIncidents
from bot.services.incidents import IncidentService
from bot.services.outbox import Outbox
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    loaded: LoadedConfig
    db: Database
    clock: Clock
    audit: AuditLog
    breakers: Breakers
    responders: Responders
    freezes: FreezeService
    health: HealthService
    incidents: IncidentService
    outbox: Outbox

    @property
    def config(self) -> GuardrailConfig:
        return self.loaded.config

    async def close(self) -> None:
        await self.outbox.aclose()
        await self.health.aclose()
        await self.db.dispose()


def build_runtime(settings: Settings, loaded: LoadedConfig, *, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    breakers = Breakers(clock=clock)
    config = loaded.config
    # One answer to "who is a responder?" for break-glass approvals and playbook buttons.
    responders = Responders(config.access.responders, clock)
    # Every announcement that must happen goes through the outbox; the Slack layer gives it a courier.
    outbox = Outbox(db, clock)
    freezes = FreezeService(db, clock, config, outbox=outbox, responders=responders)
    health = HealthService(config, CheckRunner(breakers=breakers, clock=clock, tz=config.tz), clock,
                           watch=HealthWatch(db, clock, outbox=outbox), freezes=freezes, deploys=freezes)
    incidents = IncidentService(db, clock, config, build_action, breakers, prober=health, freezes=freezes,
                                freezer=FreezeForIncidents(freezes, clock, config.freeze.max_duration),
                                secrets=action_secrets(settings), endpoints=action_endpoints(settings),
                                build_undo=build_undo, responders=responders)
    # Health answers list open incidents, and the incident playbook runs health checks: the two
    # services refer to each other, so the second link is made once both exist.
    health.incidents = incidents
    return Runtime(
        settings=settings,
        loaded=loaded,
        db=db,
        clock=clock,
        audit=AuditLog(db, clock),
        breakers=breakers,
        responders=responders,
        freezes=freezes,
        health=health,
        incidents=incidents,
        outbox=outbox,
    )
