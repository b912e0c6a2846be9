"""Everything a running guardrail needs, built once and handed to Slack, HTTP, CLI and scheduler."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

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
from bot.resilience import RECORD_OUTCOME, Breakers, CallPolicy
from bot.services.access import Responders
from bot.services.audit import AuditLog
from bot.services.changes import ChangeService
from bot.services.changes.recent import RecentChanges
from bot.services.deliveries import Deliveries
from bot.services.deploys import Deploys
from bot.services.freeze.on_incident import FreezeForIncidents
from bot.services.freeze.service import FreezeService
from bot.services.health import HealthService, HealthWatch
from bot.services.incidents import ActionFactory, IncidentService
from bot.services.incidents.records import OpenIncidents
from bot.services.incidents.runs import KEEP_TRYING_EVERY
from bot.services.outbox import Courier, Outbox
from bot.services.ports import DeployHistory, FreezeLookup, IncidentFreezer, IncidentLookup
from bot.services.rollback_check import LastRollbackCheck, RollbackCheck
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.slack.ports import SlackPorts


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
    deploys: Deploys
    deliveries: Deliveries
    health: HealthService
    incidents: IncidentService
    outbox: Outbox
    rollbacks: RollbackCheck
    changes: ChangeService
    metrics: Metrics
    steps_in_flight: InFlight
    slack: SlackPorts | None = None  # None in the CLI's commands that do not talk to Slack

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
    return DatabaseBounds(
        connect=settings.database_connect_timeout,
        statement=settings.database_statement_timeout,
        operation=settings.database_timeout,
        pool=settings.database_pool_timeout,
        busy=settings.database_busy_timeout,
    )


def replica_name() -> str:
    """This process, as step leases name it: host, pid, and a random tag (containers reuse pid 1)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Overrides:
    """Collaborators a test (or a benchmark) puts in place of the real ones. `build_runtime` wires
    them where the real ones would go, so nothing is swapped on a running service."""

    db: Database | None = None
    build_action: ActionFactory | None = None  # the playbook's actions (fakes for most tests)
    freezes: FreezeLookup | None = None  # the freeze in force, as health and playbooks see it
    freezer: IncidentFreezer | None = None  # `freeze.on_incident`
    deploys: DeployHistory | None = None  # the last deploys, as health sees them
    incidents: IncidentLookup | None = None  # the open incidents, as health sees them
    courier: Courier | None = None  # what posts the outbox (Slack's, when `slack`)
    deliveries: Deliveries | None = None  # Slack redelivery claims
    metrics: Metrics | None = None  # what the edges and the scheduler's ticks report to
    record_outcome: CallPolicy | None = None  # how long a step's result write is retried (RECORD_OUTCOME)
    keep_trying_every: float | None = None  # then how often, in the background (KEEP_TRYING_EVERY)


def build_runtime(
    settings: Settings,
    loaded: LoadedConfig,
    *,
    clock: Clock | None = None,
    slack: bool = True,
    health_context: bool = True,
    overrides: Overrides | None = None,
) -> Runtime:
    """The one place guardrail is put together, for the server, the CLI, the scheduler and tests.

    `slack`: whether this process talks to Slack (the server, and `rollback-check` with a token).
    Without it there is no Slack client: announcements wait in the outbox for a process that has one,
    and responder groups grant nobody. The CLI's other commands run without it.

    `health_context`: whether health answers look up the freeze, deploys, incidents, rollback check
    and changes in the database. `guardrail health` prints only the checks, so it asks the database
    nothing (and works before there is one).
    """
    clock = clock or SystemClock()
    o = overrides or Overrides()
    keep_secrets_out_of_logs()  # before the first request any HTTP client logs
    secret = settings.guardrail_audit_key
    db = o.db or Database(
        settings.database_url,
        database_bounds(settings),
        audit_key=AuditKey(secret.get_secret_value().encode()) if secret else None,
    )
    breakers = Breakers(clock=clock)
    metrics = o.metrics or Metrics()
    metrics.watch_breakers(breakers)
    steps_in_flight = InFlight()
    metrics.steps_in_flight.set_function(lambda: steps_in_flight.running)
    config = loaded.config
    preload(config)  # the action and probe modules this configuration uses, imported now
    checks.preload(config.services)
    ports = _slack_ports(settings, config, breakers) if slack else None
    # One answer to "who is a responder?" for break-glass approvals and playbook buttons.
    responders = Responders(config.access.principals, clock, directory=ports.directory if ports else None)
    # Every announcement that must happen goes through the outbox; Slack gives it a courier.
    outbox = Outbox(db, clock, courier=o.courier or (ports.courier if ports else None))
    replica = replica_name()
    freezes = FreezeService(db, clock, config, outbox=outbox, responders=responders, gate_timeout=settings.gate_timeout)
    deploys = Deploys(db, clock, freezes, outbox=outbox)
    # Health answers list open incidents and the last rollback check, and the incident playbook and
    # the rollback check run health checks: health is given the two reads, not the services.
    last_rollback_check = LastRollbackCheck(db)
    recent_changes = RecentChanges(db, clock, config)
    health = HealthService(
        config,
        CheckRunner(breakers=breakers, clock=clock, tz=config.tz, observe=metrics.health_result),
        clock,
        watch=HealthWatch(db, clock, outbox=outbox),
        freezes=(o.freezes or freezes) if health_context else None,
        deploys=(o.deploys or deploys) if health_context else None,
        incidents=(o.incidents or OpenIncidents(db)) if health_context else None,
        rollbacks=last_rollback_check if health_context else None,
        changes=recent_changes if health_context else None,
    )
    build = o.build_action or build_action
    incidents = IncidentService(
        db,
        clock,
        config,
        build,
        breakers,
        prober=health,
        freezes=o.freezes or freezes,
        freezer=o.freezer or FreezeForIncidents(freezes, clock, config.freeze.max_duration),
        secrets=action_secrets(settings),
        endpoints=action_endpoints(settings),
        build_undo=build_undo,
        responders=responders,
        replica=replica,
        step_lease=timedelta(seconds=settings.guardrail_step_lease_seconds),
        rollbacks=last_rollback_check,
        changes=recent_changes,
        record_outcome=o.record_outcome or RECORD_OUTCOME,
        keep_trying_every=KEEP_TRYING_EVERY if o.keep_trying_every is None else o.keep_trying_every,
        poster=ports.run_poster if ports else None,  # runs found interrupted, results recorded late
    )
    rollbacks = RollbackCheck(
        db,
        clock,
        config,
        build,
        breakers,
        secrets=action_secrets(settings),
        endpoints=action_endpoints(settings),
        prober=health,
        poster=ports.red_poster if ports else None,
    )
    # Changes probe through the health service (its checks, breakers and metrics) and declare their
    # rollback's incident through the incident service; both read "is it the deploy?" from
    # `recent_changes`, so nothing is linked after construction.
    changes = ChangeService(
        db,
        clock,
        config,
        health,
        breakers=breakers,
        responders=responders,
        owner=replica,
        outbox=outbox,
        incidents=incidents,
        recent=recent_changes,
        secrets=action_secrets(settings),
        endpoints=action_endpoints(settings),
        last_results=lambda: health.last_round.results if health.last_round else (),
    )
    return Runtime(
        settings=settings,
        loaded=loaded,
        db=db,
        clock=clock,
        audit=AuditLog(
            db,
            clock,
            config.audit,
            previous_keys=[AuditKey(key) for key in settings.audit_keys_previous()],
            poster=ports.anchor_poster if ports else None,
        ),
        breakers=breakers,
        responders=responders,
        freezes=freezes,
        deploys=deploys,
        deliveries=o.deliveries or Deliveries(db, clock),
        health=health,
        incidents=incidents,
        outbox=outbox,
        rollbacks=rollbacks,
        changes=changes,
        metrics=metrics,
        steps_in_flight=steps_in_flight,
        slack=ports,
    )


def _slack_ports(settings: Settings, config: GuardrailConfig, breakers: Breakers) -> SlackPorts:
    # Imported here: the CLI commands that run without Slack never load its client.
    from bot.slack.ports import slack_ports

    return slack_ports(settings, config, breakers)
