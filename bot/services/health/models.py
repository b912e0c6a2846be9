"""Health's domain types: a round of checks, the report people see, a watched service's change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.checks.base import CheckResult, Status
from bot.services.changes.models import RecentChange
from bot.services.ports import ActiveFreeze, DeployInfo, OpenIncident, RollbackCheckStatus


class UnknownService(LookupError):
    """Asked about services that are not configured."""

    def __init__(self, names: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(f"unknown service(s): {', '.join(names)}")
        self.names = list(names)
        self.known = list(known)


@dataclass(frozen=True)
class HealthRound:
    results: tuple[CheckResult, ...]
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True)
class HealthReport:
    """What guardrail answers to "are we down?"."""

    results: list[CheckResult]
    checked_at: datetime  # when the round finished
    age: timedelta  # how old the round was when this report was made
    reused: bool  # answered from a round that had already finished
    environment: str
    freeze: ActiveFreeze | None = None
    deploys: list[DeployInfo] = field(default_factory=list)
    incidents: list[OpenIncident] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # lookups that failed: "deploys", …
    rollback_check: RollbackCheckStatus | None = None  # the last rollback check (the "last checked" line)
    changes: list[RecentChange] = field(default_factory=list)  # "is it the deploy?", newest first

    @property
    def down(self) -> list[str]:
        return [r.service for r in self.results if r.status is Status.DOWN]

    @property
    def slow(self) -> list[str]:
        return [r.service for r in self.results if r.status is Status.SLOW]

    @property
    def headline(self) -> str:
        """ "All 6 services up" / "2 of 6 down: checkout, jobs" — the notification text."""
        total = len(self.results)
        if total == 0:
            return "No services are configured"
        if total == 1:
            only = self.results[0]
            return f"{only.service} is {only.status.value}"
        if self.down:
            return f"{len(self.down)} of {total} down: {', '.join(self.down)}"
        line = f"All {total} services up"
        if self.slow:
            line += f" ({len(self.slow)} slow: {', '.join(self.slow)})"
        return line


@dataclass(frozen=True)
class StateChange:
    service: str
    old: str  # "unknown" the first time a service is watched, else a Status value
    new: Status
    result: CheckResult
    announce: bool  # False when a newly watched service turns out to be up: nothing to say

    def to_payload(self) -> dict[str, Any]:
        """The change as an outbox message's payload."""
        r = self.result
        return {
            "service": self.service,
            "old": self.old,
            "new": self.new.value,
            "announce": self.announce,
            "result": {
                "service": r.service,
                "status": r.status.value,
                "latency_ms": r.latency_ms,
                "reason": r.reason,
                "checked_at": r.checked_at.isoformat(),
                "down_since": r.down_since.isoformat() if r.down_since else None,
            },
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> StateChange:
        """The change an outbox payload holds; KeyError/ValueError when it is not one."""
        r = data["result"]
        result = CheckResult(
            str(r["service"]),
            Status(r["status"]),
            r.get("latency_ms"),
            str(r["reason"]),
            datetime.fromisoformat(r["checked_at"]),
            datetime.fromisoformat(r["down_since"]) if r.get("down_since") else None,
        )
        return cls(str(data["service"]), str(data["old"]), Status(data["new"]), result, bool(data["announce"]))
