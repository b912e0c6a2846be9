"""The one interface every health probe implements, and what a probe reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    UP = "up"
    SLOW = "slow"
    DOWN = "down"


@dataclass(frozen=True)
class CheckResult:
    """One service's state in one round: what, how fast, and why in a few words."""

    service: str
    status: Status
    latency_ms: float | None
    reason: str
    checked_at: datetime
    down_since: datetime | None = None  # set when the service has been down for more than this round
