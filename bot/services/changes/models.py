"""Changes and their watches, as the rest of guardrail sees them (no Slack markup here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from bot.checks.base import CheckResult, Status

if TYPE_CHECKING:  # the incident feature imports these types (postmortem, header): no import cycle at runtime
    from bot.services.incidents.models import Incident

LIKELY_RELATED = timedelta(minutes=30)  # a change this long before a service went down is "likely related"


class ChangeKind(StrEnum):
    DEPLOY = "deploy"  # new code
    CONFIG = "config"  # config vars / settings
    ROLLBACK = "rollback"  # back to an earlier release
    OTHER = "other"  # add-on attached, initial release, …


class WatchStatus(StrEnum):
    WATCHING = "watching"
    HEALTHY = "healthy"
    ALERTED = "alerted"
    UNWATCHED = "unwatched"


class ChangeProblem(Exception):
    """Something a person asked that cannot be done, said plainly."""


@dataclass(frozen=True)
class Discovered:
    """A change a source found: `version` orders it within its source (release number, revision)."""

    version: int
    label: str  # "v142", "r7"
    kind: ChangeKind
    description: str
    actor: str
    at: datetime | None  # when the provider says it happened


@dataclass(frozen=True)
class Change:
    id: int
    key: str
    environment: str
    source: str  # "deploy", "heroku" or "kubernetes"
    kind: ChangeKind
    service: str
    services: tuple[str, ...]  # the services it affects (what the watch probes)
    version: str
    description: str | None
    actor: str
    at: datetime
    recorded_at: datetime
    watch_status: WatchStatus
    watch_until: datetime | None = None
    exemption: bool = False  # a deploy let through a freeze (break-glass)
    rollback_by: str | None = None
    rollback_incident: int | None = None
    auto_rollback_at: datetime | None = None
    auto_cancelled_by: str | None = None
    dismissed_by: str | None = None
    alert_service: str | None = None
    alerted_at: datetime | None = None

    @property
    def human_actor(self) -> str:
        """The actor without the API's `api:` prefix."""
        return self.actor.removeprefix("api:")


@dataclass(frozen=True)
class WatchRound:
    """One round of a watch: each affected service's status, against its baseline."""

    change: Change
    statuses: dict[str, str]  # service → up / slow / down
    baseline: dict[str, str]
    rounds: int
    elapsed: timedelta
    total: timedelta


@dataclass(frozen=True)
class WatchStarted:
    change: Change
    watch_for: timedelta


@dataclass(frozen=True)
class WatchVerdict:
    """The end of a watch: healthy, or an alarm about `service`."""

    change: Change
    healthy: bool
    statuses: dict[str, str]
    service: str | None = None  # the service that turned bad (alarm)
    status: str | None = None  # its status: down or slow
    reason: str | None = None
    after: timedelta | None = None  # how long after the change it turned bad
    auto_rollback_at: datetime | None = None
    alert_outbox_id: int | None = None


@dataclass(frozen=True)
class RecentChange:
    """A change in the "is it the deploy?" list."""

    change: Change
    likely_related: bool = False


@dataclass(frozen=True)
class RollbackStarted:
    """This press won the rollback: the incident declared for it and the step to run there."""

    change: Change
    incident: Incident
    step_id: str
    actor: str
    automatic: bool = False


@dataclass(frozen=True)
class RollbackRefused:
    code: Literal["not_responder", "unknown", "taken", "no_step", "dismissed", "cancelled"]
    reason: str
    incident_id: int | None = None


@dataclass(frozen=True)
class Dismissed:
    change: Change
    actor: str


@dataclass(frozen=True)
class CountdownCancelled:
    change: Change
    actor: str


@dataclass
class WatchEvents:
    """What a watch tick did, for the Slack layer (and tests)."""

    started: list[WatchStarted] = field(default_factory=list)
    rounds: list[WatchRound] = field(default_factory=list)
    verdicts: list[WatchVerdict] = field(default_factory=list)
    rollbacks: list[RollbackStarted] = field(default_factory=list)


def mark_related(changes: Sequence[Change], results: Sequence[CheckResult]) -> list[RecentChange]:
    """Each change, "likely related" when made within 30 minutes before an affected service went down."""
    down_at = {r.service: r.down_since or r.checked_at for r in results if r.status is Status.DOWN}
    return [
        RecentChange(
            change,
            likely_related=any(
                service in down_at and timedelta(0) <= down_at[service] - change.at <= LIKELY_RELATED
                for service in change.services
            ),
        )
        for change in changes
    ]
