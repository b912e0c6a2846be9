"""Table rows → domain objects, and the watch's stored state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.db.changes import ChangeRecord
from bot.services.changes.models import Change, ChangeKind, WatchStatus

Session = Any  # a unit of work's session, passed on to bot.db (services never import the ORM)


def to_change(row: ChangeRecord) -> Change:
    assert row.id is not None
    return Change(
        id=row.id,
        key=row.key,
        environment=row.environment,
        source=row.source,
        kind=ChangeKind(row.kind),
        service=row.service,
        services=tuple(json.loads(row.services)),
        version=row.version,
        description=row.description,
        actor=row.actor,
        at=row.at,
        recorded_at=row.recorded_at,
        watch_status=WatchStatus(row.watch_status),
        watch_until=row.watch_until,
        exemption="exemption" in (row.description or "").lower(),
        rollback_by=row.rollback_by,
        rollback_incident=row.rollback_incident,
        auto_rollback_at=row.auto_rollback_at,
        auto_cancelled_by=row.auto_cancelled_by,
        dismissed_by=row.dismissed_by,
        alert_service=row.alert_service,
        alerted_at=row.alerted_at,
    )


@dataclass
class WatchState:
    """What a watch remembers between rounds (stored as JSON on its row, so any replica can go on)."""

    baseline: dict[str, str] = field(default_factory=dict)  # service → status before the change
    streaks: dict[str, int] = field(default_factory=dict)  # consecutive bad rounds not bad before
    last: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    bad_since: dict[str, str] = field(default_factory=dict)  # ISO time the current bad streak began
    rounds: int = 0

    def dump(self) -> str:
        return json.dumps(
            {
                "baseline": self.baseline,
                "streaks": self.streaks,
                "last": self.last,
                "reasons": self.reasons,
                "bad_since": self.bad_since,
                "rounds": self.rounds,
            }
        )

    @classmethod
    def load(cls, text: str | None) -> WatchState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            baseline=dict(data.get("baseline", {})),
            streaks=dict(data.get("streaks", {})),
            last=dict(data.get("last", {})),
            reasons=dict(data.get("reasons", {})),
            bad_since=dict(data.get("bad_since", {})),
            rounds=int(data.get("rounds", 0)),
        )

    def bad_since_at(self, service: str) -> datetime | None:
        value = self.bad_since.get(service)
        return datetime.fromisoformat(value) if value else None
