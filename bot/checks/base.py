"""What a probe reports, and `ServiceProber`: what a playbook step asks of health checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from bot.redaction import OPAQUE


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


class ServiceProber(Protocol):
    """Runs the named services' checks on demand: the `checks` action and the rollback check ask it;
    the health service implements it. It lives here, with what it returns, so `actions/` need not
    import `services/`."""

    async def probe(self, names: Sequence[str]) -> list[CheckResult]:
        """Run the named services' checks now (concurrently) and return their results."""
        ...


def safe_target(url: str) -> str:
    """Where a request goes, for breaker keys, logs and messages: the URL without user, password,
    query string or fragment, and long opaque path segments (a webhook's secret) as ***."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: show no more than the scheme
        return url.partition(":")[0] + "://***"
    if ":" in host:
        host = f"[{host}]"  # IPv6
    path = "/".join("***" if OPAQUE.fullmatch(segment) else segment for segment in parts.path.split("/"))
    return f"{parts.scheme}://{host}{port}{path}"
