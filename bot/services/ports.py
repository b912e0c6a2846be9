"""What one feature asks of another, as small protocols.

Health answers show the active freeze, the last deploys and open incidents; the incident
playbook runs health checks and respects freezes. Each feature depends on these protocols,
never on another feature's module, so features stay independently testable.
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
    async def last_deploys(self, environment: str | None = None) -> list[DeployInfo]:
        """The most recent recorded deploy of each service, newest first."""
        ...


class IncidentLookup(Protocol):
    async def open_incidents(self) -> list[OpenIncident]:
        ...


class ServiceProber(Protocol):
    async def probe(self, names: Sequence[str]) -> list[CheckResult]:
        """Run the named services' checks now (concurrently) and return their results."""
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
    async def recent(self, services: Sequence[str] | None = None, *, results: Sequence[CheckResult] = (),
                     until: datetime | None = None) -> list[RecentChange]:
        """Changes within `changes.lookback` before `until` (default now), newest first, the ones made
        within 30 minutes before a service in `results` went down marked "likely related"."""
        ...
