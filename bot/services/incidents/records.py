"""Table rows → domain objects, and the read other features make (`OpenIncidents`)."""

from __future__ import annotations

import json
from typing import Any

from bot.db import incidents as tables
from bot.db.engine import Database
from bot.db.incidents import IncidentRecord, IncidentStepRecord
from bot.services.incidents.models import Incident, StepState
from bot.services.ports import OpenIncident

# A unit of work's session, as `Database.unit_of_work()` / `reader()` yield it. Services only pass it
# on to `bot.db` functions, so they name it loosely and never import the ORM.
Session = Any


def to_incident(row: IncidentRecord) -> Incident:
    assert row.id is not None
    return Incident(
        id=row.id,
        title=row.title,
        severity=row.severity,
        status=row.status,
        commander=row.commander,
        playbook=row.playbook,
        declared_in=row.declared_in,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        playbook_ts=row.playbook_ts,
        header_ts=row.header_ts,
        freeze_id=row.freeze_id,
        declared_at=row.declared_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        summary=row.summary,
    )


def to_state(key: str, row: IncidentStepRecord | None) -> StepState:
    if row is None:
        return StepState(key=key)
    return StepState(
        key=key,
        status=row.status,
        attempt=row.attempt,
        actor=row.actor,
        started_at=row.started_at,
        finished_at=row.finished_at,
        succeeded_at=row.succeeded_at,
        summary=row.summary,
        remembered=json.loads(row.remembered) if row.remembered else {},
    )


class OpenIncidents:
    """`IncidentLookup` (bot.services.ports): a read of the database alone, so the health service can
    be given it before the incident service (which runs health checks) exists."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_incidents(self) -> list[OpenIncident]:
        async with self._db.reader() as session:
            rows = await tables.open_incidents(session)
        return [
            OpenIncident(
                id=i.id, title=i.title, severity=i.severity, channel_id=i.channel_id, declared_at=i.declared_at
            )
            for i in map(to_incident, rows)
        ]
