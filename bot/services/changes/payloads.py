"""Changes and verdicts as outbox payloads (plain JSON): the courier renders them when it posts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.services.changes.models import Change, ChangeKind, WatchStarted, WatchStatus, WatchVerdict

STARTED = "changes.watch_started"
ALERT = "changes.alert"
KIND_PREFIX = "changes."


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def change_payload(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "key": change.key,
        "environment": change.environment,
        "source": change.source,
        "kind": change.kind.value,
        "service": change.service,
        "services": list(change.services),
        "version": change.version,
        "description": change.description,
        "actor": change.actor,
        "at": change.at.isoformat(),
        "recorded_at": change.recorded_at.isoformat(),
        "watch_status": change.watch_status.value,
        "watch_until": _iso(change.watch_until),
        "exemption": change.exemption,
    }


def change_from(data: dict[str, Any]) -> Change:
    at = _at(data["at"])
    recorded = _at(data["recorded_at"])
    assert at is not None and recorded is not None
    return Change(
        id=int(data["id"]),
        key=str(data["key"]),
        environment=str(data["environment"]),
        source=str(data["source"]),
        kind=ChangeKind(data["kind"]),
        service=str(data["service"]),
        services=tuple(str(s) for s in data["services"]),
        version=str(data["version"]),
        description=data.get("description"),
        actor=str(data["actor"]),
        at=at,
        recorded_at=recorded,
        watch_status=WatchStatus(data["watch_status"]),
        watch_until=_at(data.get("watch_until")),
        exemption=bool(data.get("exemption")),
    )


def started_payload(started: WatchStarted) -> dict[str, Any]:
    return {"change": change_payload(started.change), "watch_for_s": started.watch_for.total_seconds()}


def started_from(data: dict[str, Any]) -> WatchStarted:
    return WatchStarted(change_from(data["change"]), timedelta(seconds=float(data["watch_for_s"])))


def verdict_payload(verdict: WatchVerdict) -> dict[str, Any]:
    return {
        "change": change_payload(verdict.change),
        "healthy": verdict.healthy,
        "statuses": verdict.statuses,
        "service": verdict.service,
        "status": verdict.status,
        "reason": verdict.reason,
        "after_s": verdict.after.total_seconds() if verdict.after is not None else None,
        "auto_rollback_at": _iso(verdict.auto_rollback_at),
    }


def verdict_from(data: dict[str, Any]) -> WatchVerdict:
    after = data.get("after_s")
    return WatchVerdict(
        change=change_from(data["change"]),
        healthy=bool(data["healthy"]),
        statuses={str(k): str(v) for k, v in dict(data.get("statuses") or {}).items()},
        service=data.get("service"),
        status=data.get("status"),
        reason=data.get("reason"),
        after=timedelta(seconds=float(after)) if after is not None else None,
        auto_rollback_at=_at(data.get("auto_rollback_at")),
    )
