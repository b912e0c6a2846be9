"""What one feature asks of another, as small protocols.

Health answers show the active freeze, the last deploys and open incidents; the incident
playbook respects freezes and freezes deploys. Each feature depends on these protocols, never on
another feature's module, so features stay independently testable. (Running health checks on
demand is `bot.checks.base.ServiceProber`: the actions that use it may not import services.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.checks.base import CheckResult

if TYPE_CHECKING:
    from bot.services.changes.models import RecentChange


@dataclass(frozen=True)
class ActiveFreeze:
    id: int
    environment: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    created_by: str


@dataclass(frozen=True)
class DeployInfo:
    environment: str
    service: str
    version: str
    actor: str
    at: datetime
    url: str | None = None


@dataclass(frozen=True)
class OpenIncident:
    id: int
    title: str
    severity: str
    channel_id: str | None
    declared_at: datetime


class FreezeLookup(Protocol):
    async def active_window(self, environment: str, *, service: str | None = None) -> ActiveFreeze | None:
        """The freeze in force for `environment` now (None when not frozen)."""
        ...


class DeployHistory(Protocol):
    async def recent(self, environment: str | None = None) -> list[DeployInfo]:
        """The most recent recorded deploy of each service, newest first."""
        ...


class IncidentLookup(Protocol):
    async def open_incidents(self) -> list[OpenIncident]: ...


class IncidentFreezer(Protocol):
    """`freeze.on_incident`: what the incident feature asks of the freeze feature.

    When an incident of a listed severity is declared, deploys to the default environment are
    frozen for its duration; on resolve, guardrail offers to lift that freeze. The freeze feature
    implements this (`bot.services.freeze.on_incident`); without one, `on_incident` does nothing."""

    async def freeze_for_incident(self, *, environment: str, incident_id: int, reason: str, actor: str) -> ActiveFreeze:
        """Start an open-ended freeze of `environment` for the incident (announced and audited there)."""
        ...

    async def lift(self, freeze_id: int, *, actor: str) -> bool:
        """End the freeze now; False when it had already ended or been lifted."""
        ...


@dataclass(frozen=True)
class RollbackCheckStatus:
    """The last finished rollback check, for the "last checked" line of /health and the playbook."""

    checked_at: datetime
    ok: bool
    paths: int
    red: int


class RollbackCheckLookup(Protocol):
    async def last_rollback_check(self) -> RollbackCheckStatus | None:
        """The last finished rollback check (None when none ran yet)."""
        ...


class ChangeLookup(Protocol):
    async def recent(
        self,
        services: Sequence[str] | None = None,
        *,
        results: Sequence[CheckResult] = (),
        until: datetime | None = None,
    ) -> list[RecentChange]:
        """Changes within `changes.lookback` before `until` (default now), newest first, the ones made
        within 30 minutes before a service in `results` went down marked "likely related"."""
        ...
