"""Freeze rows → domain objects, and the reads the gate and deploy recording share."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.db import freeze as tables
from bot.db.freeze import FreezeExemptionRecord, WindowFields
from bot.services.freeze.models import Exemption, ExemptionStatus, FreezeWindow


def window_from_row(row: WindowFields) -> FreezeWindow:
    assert row.id is not None
    return FreezeWindow(
        id=row.id,
        environment=row.environment,
        reason=row.reason,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
        cancelled_by=row.cancelled_by,
        recurring=row.recurring_key is not None,
    )


def exemption_from_row(row: FreezeExemptionRecord) -> Exemption:
    assert row.id is not None
    return Exemption(
        id=row.id,
        window_id=row.window_id,
        service=row.service,
        duration=timedelta(seconds=row.duration_seconds),
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=ExemptionStatus(row.status),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        expires_at=row.expires_at,
    )


def window_details(window: FreezeWindow) -> dict[str, Any]:
    return {
        "environment": window.environment,
        "reason": window.reason,
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
    }


async def gate_state(
    session: tables.Session, *, at: datetime, until: datetime, environment: str | None = None
) -> tuple[list[FreezeWindow], list[Exemption]]:
    """Windows in force at `at` or starting before `until`, with their approved exemptions."""
    windows = [
        window_from_row(r) for r in await tables.windows_in_force(session, at=at, until=until, environment=environment)
    ]
    if not windows:
        return [], []
    rows = await tables.exemptions_of(
        session, window_ids=[w.id for w in windows], status=ExemptionStatus.APPROVED.value
    )
    return windows, [exemption_from_row(r) for r in rows]
