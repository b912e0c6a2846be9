"""Everything a running guardrail needs, built once and handed to Slack, HTTP, CLI and scheduler."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from bot.actions import build_action, build_undo, preload
from bot.actions.environment import action_endpoints, action_secrets
from bot.checks import runner as checks
from bot.checks.runner import CheckRunner
from bot.clock import Clock, SystemClock
from bot.config import GuardrailConfig, LoadedConfig
from bot.db.audit import AuditKey
from bot.db.engine import Database, DatabaseBounds
from bot.inflight import InFlight
from bot.logs import keep_secrets_out_of_logs
from bot.metrics import Metrics
from bot.resilience import Breakers
from bot.services.access import Responders
from bot.services.audit import AuditLog
from bot.services.changes import ChangeService
from bot.services.freeze import FreezeService
from bot.services.health import HealthService
from bot.services.health_watch import HealthWatch
from bot.services.incident_freezes import FreezeForIncidents
from bot.services.incidents import IncidentService
from bot.services.outbox import Outbox
from bot.services.rollback_check import RollbackCheck
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
    rollbacks: RollbackCheck
    changes: ChangeService
    metrics: Metrics
    steps_in_flight: InFlight

    @property
    def config(self) -> GuardrailConfig:
        return self.loaded.config

    async def close(self) -> None:
        await self.outbox.aclose()
        await self.changes.aclose()
        await self.incidents.steps.close()  # results still waiting for the database are logged, loudly
        await self.health.aclose()
        await self.db.dispose()


def database_bounds(settings: Settings) -> DatabaseBounds:
    return DatabaseBounds(connect=settings.database_connect_timeout, statement=settings.database_statement_timeout,
                          operation=settings.database_timeout, pool=settings.database_pool_timeout,
                          busy=settings.database_busy_timeout)


def replica_name() -> str:
    """This process, as step leases name it: host, pid, and a random tag (containers reuse pid 1)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_runtime(settings: Settings, loaded: LoadedConfig, *, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    keep_secrets_out_of_logs()  # before the first request any HTTP client logs
    secret = settings.guardrail_audit_key
    db = Database(settings.database_url, database_bounds(settings),
                  audit_key=AuditKey(secret.get_secret_value().encode()) if secret else None)
    breakers = Breakers(clock=clock)
    metrics = Metrics()
    metrics.watch_breakers(breakers)
    steps_in_flight = InFlight()
    metrics.steps_in_flight.set_function(lambda: steps_in_flight.running)
    config = loaded.config
    preload(config)                 # the action and probe modules this configuration uses, imported now
    checks.preload(config.services)
    # One answer to "who is a responder?" for break-glass approvals and playbook buttons.
    responders = Responders(config.access.responders, clock)
    # Every announcement that must happen goes through the outbox; the Slack layer gives it a courier.
    outbox = Outbox(db, clock)
    replica = replica_name()
    freezes = FreezeService(db, clock, config, outbox=outbox, responders=responders,
                            gate_timeout=settings.gate_timeout)
    health = HealthService(config, CheckRunner(breakers=breakers, clock=clock, tz=config.tz,
                                               observe=metrics.health_result), clock,
                           watch=HealthWatch(db, clock, outbox=outbox), freezes=freezes, deploys=freezes)
    incidents = IncidentService(db, clock, config, build_action, breakers, prober=health, freezes=freezes,
                                freezer=FreezeForIncidents(freezes, clock, config.freeze.max_duration),
                                secrets=action_secrets(settings), endpoints=action_endpoints(settings),
                                build_undo=build_undo, responders=responders, replica=replica,
                                step_lease=timedelta(seconds=settings.guardrail_step_lease_seconds))
    # Health answers list open incidents, and the incident playbook runs health checks: the two
    # services refer to each other, so the second link is made once both exist.
    health.incidents = incidents
    rollbacks = RollbackCheck(db, clock, config, build_action, breakers, secrets=action_secrets(settings),
                              endpoints=action_endpoints(settings), prober=health)
    health.rollbacks = incidents.rollbacks = rollbacks
    # Changes probe through the health service (its checks, breakers and metrics) and declare their
    # rollback's incident through the incident service.
    changes = ChangeService(db, clock, config, health, breakers=breakers, responders=responders, owner=replica,
                            outbox=outbox, incidents=incidents, secrets=action_secrets(settings),
                            endpoints=action_endpoints(settings),
                            last_results=lambda: health.last_round.results if health.last_round else ())
    health.changes = incidents.changes = changes   # "is it the deploy?" in health answers and incidents
    return Runtime(
        settings=settings,
        loaded=loaded,
        db=db,
        clock=clock,
        audit=AuditLog(db, clock, config.audit,
                       previous_keys=[AuditKey(key) for key in settings.audit_keys_previous()]),
        breakers=breakers,
        responders=responders,
        freezes=freezes,
        health=health,
        incidents=incidents,
        outbox=outbox,
        rollbacks=rollbacks,
        changes=changes,
        metrics=metrics,
        steps_in_flight=steps_in_flight,
    )
