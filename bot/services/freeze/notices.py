"""Freeze notices as outbox messages: a notice ⇄ a JSON payload, whole (the Slack layer renders
exactly what was true when the change committed, without reading the database again)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from typing import Any

from bot.db.freeze import Session
from bot.services.freeze.models import (
    Exemption,
    ExemptionStatus,
    FreezeNotice,
    FreezeWindow,
    NoticeKind,
    RecordedDeploy,
)
from bot.services.outbox import enqueue, enqueue_many
from bot.services.ports import DeployInfo

KIND_PREFIX = "freeze."


def outbox_kind(notice: FreezeNotice) -> str:
    return KIND_PREFIX + notice.kind.value


def expires_at(notice: FreezeNotice) -> datetime | None:
    """A reminder that did not go out before its window started would be wrong; nothing else expires."""
    if notice.kind is NoticeKind.REMINDER and notice.window is not None:
        return notice.window.starts_at
    return None


def to_payload(notice: FreezeNotice) -> dict[str, Any]:
    return {
        "kind": notice.kind.value,
        "at": _time(notice.at),
        "actor": notice.actor,
        "window": _window(notice.window) if notice.window is not None else None,
        "until_start": _seconds(notice.until_start),
        "extended_by": _seconds(notice.extended_by),
        "exemption": _exemption(notice.exemption) if notice.exemption is not None else None,
        "deploy": _deploy(notice.deploy) if notice.deploy is not None else None,
        "due_at": _time(notice.due_at) if notice.due_at is not None else None,
    }


async def enqueue_notice(session: Session, notice: FreezeNotice) -> None:
    """Write the notice to the outbox, in the caller's unit of work."""
    await enqueue(
        session, kind=outbox_kind(notice), payload=to_payload(notice), at=notice.at, expires_at=expires_at(notice)
    )


async def enqueue_notices(session: Session, notices: Sequence[FreezeNotice]) -> None:
    """Write many notices to the outbox with one statement, in the caller's unit of work."""
    await enqueue_many(session, [(outbox_kind(n), to_payload(n), n.at, expires_at(n)) for n in notices])


def from_payload(data: dict[str, Any]) -> FreezeNotice:
    """The notice a payload holds; KeyError/ValueError/TypeError when it is not one."""
    return FreezeNotice(
        NoticeKind(data["kind"]),
        _parse(data["at"]),
        str(data["actor"]),
        window=_read_window(data["window"]) if data.get("window") else None,
        until_start=_delta(data.get("until_start")),
        extended_by=_delta(data.get("extended_by")),
        exemption=_read_exemption(data["exemption"]) if data.get("exemption") else None,
        deploy=_read_deploy(data["deploy"]) if data.get("deploy") else None,
        due_at=_parse(data["due_at"]) if data.get("due_at") else None,
    )


def _time(value: datetime) -> str:
    return value.isoformat()


def _parse(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _delta(value: Any) -> timedelta | None:
    return timedelta(seconds=float(value)) if value is not None else None


def _times(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: (_parse(v) if k in names and v is not None else v) for k, v in data.items()}


_WINDOW_TIMES = ("starts_at", "ends_at", "created_at", "cancelled_at")
_EXEMPTION_TIMES = ("requested_at", "decided_at", "expires_at")


def _window(window: FreezeWindow) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(window).items()}


def _read_window(data: dict[str, Any]) -> FreezeWindow:
    known = {f.name for f in fields(FreezeWindow)}
    return FreezeWindow(**_times({k: v for k, v in data.items() if k in known}, _WINDOW_TIMES))


def _exemption(exemption: Exemption) -> dict[str, Any]:
    data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(exemption).items()}
    data["duration"] = exemption.duration.total_seconds()
    data["status"] = exemption.status.value
    return data


def _read_exemption(data: dict[str, Any]) -> Exemption:
    known = {f.name for f in fields(Exemption)}
    values = _times({k: v for k, v in data.items() if k in known}, _EXEMPTION_TIMES)
    values["duration"] = timedelta(seconds=float(values["duration"]))
    values["status"] = ExemptionStatus(values["status"])
    return Exemption(**values)


def _deploy(deploy: RecordedDeploy) -> dict[str, Any]:
    info = deploy.info
    return {
        "id": deploy.id,
        "environment": info.environment,
        "service": info.service,
        "version": info.version,
        "actor": info.actor,
        "at": info.at.isoformat(),
        "url": info.url,
        "exemptions": [_exemption(e) for e in deploy.exemptions],
        "replayed": deploy.replayed,
    }


def _read_deploy(data: dict[str, Any]) -> RecordedDeploy:
    info = DeployInfo(
        data["environment"], data["service"], data["version"], data["actor"], _parse(data["at"]), data.get("url")
    )
    return RecordedDeploy(
        int(data["id"]),
        info,
        tuple(_read_exemption(e) for e in data.get("exemptions") or []),
        bool(data.get("replayed")),
    )
