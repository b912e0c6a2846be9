"""Freeze windows for people and programs outside Slack: plain text for the CLI, JSON for the API.

The freeze service's refusals and the grammar's errors quote names and examples as `code` spans
(Markdown, shown as code in Slack); `plain` drops the backticks for a terminal or a JSON client.
They hold no mentions or bold (tests/test_architecture.py), so nothing else needs undoing. Shared by
`guardrail freeze …` (bot/cli_freeze.py) and `/api/v1/freezes` (bot/api_freezes.py), so both say the
same thing the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import format_duration
from bot.services.freeze.models import FreezeWindow


def plain(message: str) -> str:
    """A refusal without the backticks of its code spans."""
    return message.replace("`", "")


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    """ "2026-12-01 14:00 CET"; in UTC at the edge of the calendar, where no local time exists."""
    try:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    except (OverflowError, ValueError):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def state(window: FreezeWindow, now: datetime) -> str:
    if window.cancelled_at is not None:
        return "cancelled"
    if window.ends_at <= now:
        return "ended"
    return "frozen now" if window.is_active(now) else "upcoming"


def window_line(window: FreezeWindow, tz: ZoneInfo, now: datetime, others: Sequence[FreezeWindow] = ()) -> str:
    """One line: `#3 production 2026-12-01 14:00 CET → 2026-12-01 16:00 CET (2h) upcoming: Demo (by api:x)`."""
    line = (
        f"#{window.id} {window.environment} {local_time(window.starts_at, tz)} → "
        f"{local_time(window.ends_at, tz)} ({format_duration(window.ends_at - window.starts_at)}) "
        f"{state(window, now)}: {window.reason} (by {window.created_by})"
    )
    overlapping = [f"#{o.id}" for o in others if window.overlaps(o)]
    if overlapping:
        line += f", overlaps {', '.join(overlapping)}"
    if window.cancelled_by is not None:
        line += f", cancelled by {window.cancelled_by}"
    return line


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def window_json(window: FreezeWindow, now: datetime) -> dict[str, Any]:
    """A window as the API and `guardrail freeze list --json` show it (times in UTC, ISO 8601)."""
    return {
        "id": window.id,
        "environment": window.environment,
        "reason": window.reason,
        "starts_at": _time(window.starts_at),
        "ends_at": _time(window.ends_at),
        "state": state(window, now).replace(" ", "_"),
        "created_by": window.created_by,
        "created_at": _time(window.created_at),
        "cancelled_at": _time(window.cancelled_at),
        "cancelled_by": window.cancelled_by,
        "recurring": window.recurring,
    }
