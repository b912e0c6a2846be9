"""When a window has something to announce: pure functions the scheduler tick applies.

A window's events are its reminders (each of `freeze.reminders` before the start), its start
and its end. Events that fell due before the window was created are skipped (its creation
announcement already said when it starts). After downtime: a window that has ended gets only
its end; one that has started gets only its start; one still upcoming gets only the latest
due reminder — never a burst of stale ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.services.freeze.models import FreezeWindow, NoticeKind

_DAYS = {
    "MON": "Monday",
    "TUE": "Tuesday",
    "WED": "Wednesday",
    "THU": "Thursday",
    "FRI": "Friday",
    "SAT": "Saturday",
    "SUN": "Sunday",
}


@dataclass(frozen=True)
class DueEvent:
    """One claim to take; `post` is False for events skipped on catch-up (claimed silently)."""

    key: str
    kind: NoticeKind
    post: bool
    until_start: timedelta | None = None
    due_at: datetime | None = None


def _events(window: FreezeWindow, reminders: Sequence[timedelta]) -> list[tuple[datetime, str, NoticeKind]]:
    events: list[tuple[datetime, str, NoticeKind]] = []
    for lead in sorted(set(reminders), reverse=True):
        at = window.starts_at - lead
        if at > window.created_at:
            events.append((at, f"w{window.id}:reminder:{int(lead.total_seconds())}", NoticeKind.REMINDER))
    if window.starts_at > window.created_at:
        events.append((window.starts_at, f"w{window.id}:start", NoticeKind.STARTED))
    elif window.recurring and window.ends_at > window.created_at:
        # A recurring window materialized after it began (the bot's first start, or it was down):
        # no creation notice went out, so its start is announced as soon as it exists.
        events.append((window.created_at, f"w{window.id}:start", NoticeKind.STARTED))
    events.append((window.ends_at, f"w{window.id}:end", NoticeKind.ENDED))
    return events


def next_event_at(window: FreezeWindow, reminders: Sequence[timedelta], after: datetime) -> datetime | None:
    """The first event strictly after `after`; None when the window has nothing left to say."""
    if window.cancelled_at is not None:
        return None
    later = [at for at, _, _ in _events(window, reminders) if at > after]
    return min(later) if later else None


def first_event_at(window: FreezeWindow, reminders: Sequence[timedelta]) -> datetime | None:
    """For a new window: its first event (possibly already due)."""
    if window.cancelled_at is not None:
        return None
    return min(at for at, _, _ in _events(window, reminders))


def due_events(window: FreezeWindow, reminders: Sequence[timedelta], now: datetime) -> list[DueEvent]:
    """Events due at `now`, with which one is announced (see the module docstring)."""
    if window.cancelled_at is not None:
        return []
    due = [(at, key, kind) for at, key, kind in _events(window, reminders) if at <= now]
    if not due:
        return []
    if now >= window.ends_at:
        announce = NoticeKind.ENDED
    elif now >= window.starts_at:
        announce = NoticeKind.STARTED
    else:
        announce = NoticeKind.REMINDER
    latest_of_kind = max((at for at, _, kind in due if kind is announce), default=None)
    result = []
    for at, key, kind in due:
        post = kind is announce and at == latest_of_kind
        result.append(DueEvent(key, kind, post, window.starts_at - now if kind is NoticeKind.REMINDER else None, at))
    return result


def occurrences(cron: str, tz: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """Fire times of a crontab in `tz` within [start, end], as aware datetimes (DST handled by the trigger)."""
    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        yield fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))


def describe_cron(cron: str, tz_name: str) -> str:
    """A crontab in plain words where it is a common shape ("every Friday 16:00 Europe/Berlin")."""
    fields = cron.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit() and fields[2] == "*" and fields[3] == "*":
        clock = f"{int(fields[1]):02d}:{int(fields[0]):02d}"
        dow = fields[4].upper()
        if dow == "*":
            return f"every day {clock} {tz_name}"
        names = [_DAYS.get(part) for part in dow.split(",")]
        if all(names):
            return f"every {', '.join(n for n in names if n)} {clock} {tz_name}"
        if "-" in dow and all(p in _DAYS for p in dow.split("-")):
            first, last = dow.split("-")
            return f"{_DAYS[first]} to {_DAYS[last]} {clock} {tz_name}"
    return f"on cron `{cron}` ({tz_name})"
