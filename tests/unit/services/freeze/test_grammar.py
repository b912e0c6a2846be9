"""The `/freeze` grammar: what people type → windows in the team's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from bot.clock import SystemClock
from bot.services.freeze import grammar as g

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Berlin


def create(text: str, now: datetime = NOW, tz: ZoneInfo = BERLIN) -> g.CreateWindow:
    request = g.parse(text, now=now, tz=tz)
    assert isinstance(request, g.CreateWindow), request
    return request


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_for_starts_now() -> None:
    w = create("for 2h Demo Day")
    assert (w.starts_at, w.ends_at, w.environment, w.reason) == (NOW, NOW + timedelta(hours=2), None, "Demo Day")


def test_in_then_for() -> None:
    w = create("in 30m for 2h Demo Day")
    assert w.starts_at == NOW + timedelta(minutes=30) and w.ends_at == NOW + timedelta(hours=2, minutes=30)


def test_time_of_day_is_read_in_the_team_zone_with_environment() -> None:
    w = create("from 14:00 for 4h on staging Demo Day")
    assert (w.starts_at, w.ends_at, w.environment) == (utc(2026, 11, 30, 13), utc(2026, 11, 30, 17), "staging")


def test_dates_until_and_an_explicit_zone() -> None:
    w = create("from 2026-12-01 14:00 until 2026-12-01 18:00 Demo Day")
    assert (w.starts_at, w.ends_at) == (utc(2026, 12, 1, 13), utc(2026, 12, 1, 17))
    w = create("from 2026-12-01 14:00 Europe/London until 2026-12-01 18:00 UTC Demo Day")
    assert (w.starts_at, w.ends_at) == (utc(2026, 12, 1, 14), utc(2026, 12, 1, 18))


def test_tomorrow_until_a_time_of_day_ends_on_the_same_day() -> None:
    w = create("from tomorrow 09:00 until 12:00 Release")
    assert (w.starts_at, w.ends_at, w.reason) == (utc(2026, 12, 1, 8), utc(2026, 12, 1, 11), "Release")


def test_until_a_time_earlier_than_the_start_means_the_next_day() -> None:
    w = create("from 22:00 until 06:00 Night migration")
    assert (w.starts_at, w.ends_at) == (utc(2026, 11, 30, 21), utc(2026, 12, 1, 5))


def test_before_an_event_with_lead() -> None:
    w = create("before 2026-12-01 15:00 lead 2h for 1h Demo Day")
    assert (w.starts_at, w.ends_at) == (utc(2026, 12, 1, 12), utc(2026, 12, 1, 15))


def test_tomorrow_around_midnight_follows_the_team_zone_not_utc() -> None:
    # 00:30 on 1 December in Berlin is still 30 November in UTC: "tomorrow" is 2 December.
    with freeze_time("2026-11-30 23:30:00"):
        now = SystemClock().now()
        w = create("from tomorrow 09:00 for 1h Standup", now=now)
    assert w.starts_at == utc(2026, 12, 2, 8)
    # ...and 23:30 on 30 November in Berlin (22:30 UTC): tomorrow is 1 December.
    with freeze_time("2026-11-30 22:30:00"):
        w = create("from tomorrow 09:00 for 1h Standup", now=SystemClock().now())
    assert w.starts_at == utc(2026, 12, 1, 8)


def test_daylight_saving_skipped_time_is_refused_and_durations_are_real_hours() -> None:
    with pytest.raises(g.GrammarError, match="does not exist in Europe/Berlin"):
        create("from 2026-03-29 02:30 for 1h Maintenance")
    # Autumn: 01:00 CEST + 3 real hours = 03:00 CET (the 02:00-03:00 hour happens twice).
    w = create("from 2026-10-25 01:00 for 3h Maintenance")
    assert w.starts_at == utc(2026, 10, 24, 23) and w.ends_at.astimezone(BERLIN).hour == 3
    # Spring: 01:00 CET until 04:00 CEST is only two real hours.
    w = create("from 2026-03-29 01:00 until 04:00 Maintenance")
    assert w.ends_at - w.starts_at == timedelta(hours=2)


def test_subcommands() -> None:
    assert g.parse("", now=NOW, tz=BERLIN) == g.ListWindows()
    assert g.parse("list", now=NOW, tz=BERLIN) == g.ListWindows()
    assert g.parse("status staging", now=NOW, tz=BERLIN) == g.ShowStatus("staging")
    assert g.parse("cancel #3", now=NOW, tz=BERLIN) == g.CancelWindow(3)
    assert g.parse("extend #3 30m", now=NOW, tz=BERLIN) == g.ExtendWindow(3, timedelta(minutes=30))
    assert g.parse("new", now=NOW, tz=BERLIN) == g.OpenForm()
    assert g.parse("exempt #2 api 30m hotfix for checkout", now=NOW, tz=BERLIN) == g.RequestExemption(
        2, "api", timedelta(minutes=30), "hotfix for checkout"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("for two hours Demo", "`two` (after `for`) is not a duration"),
        ("from noon for 1h Demo", "I did not understand `noon`"),
        ("from 25:00 for 1h Demo", "I did not understand `25:00`"),
        ("from 2026-02-30 10:00 for 1h Demo", "`2026-02-30` is not a real date"),
        ("in 30m Demo", "How long? Add `for 2h` or `until 18:00`"),
        ("for 2h", "Say why after the times"),
        ("for 1h until 18:00 Demo", "either `for` (a duration) or `until`"),
        ("before 2026-12-01 15:00 for 1h Demo", "`before` needs a `lead`"),
        ("from 2026-12-01 14:00 Mars/Olympus for 1h Demo", "`Mars/Olympus` is not a time zone"),
        ("cancel 3x", "`3x` is not a window id"),
        ("extend #3", "`extend` needs a window id and a duration"),
        ("for 1h for 2h Demo", "`for` appears twice"),
    ],
)
def test_what_was_not_understood_is_named(text: str, expected: str) -> None:
    with pytest.raises(g.GrammarError, match=re.escape(expected)):
        g.parse(text, now=NOW, tz=BERLIN)


def test_an_unknown_subcommand_gets_the_usage() -> None:
    request = g.parse("frobnicate", now=NOW, tz=BERLIN)
    assert isinstance(request, g.ShowUsage) and "I don't know `/freeze frobnicate`" in request.message
    assert "/freeze cancel #N" in request.message


@pytest.mark.parametrize(
    "text",
    [
        "for 99999999d x",
        "from 9999-12-31 23:59 for 1d x",
        "from 0001-01-01 00:00 for 1h x",
        "in 99999999d for 1h x",
        "before 0001-01-01 01:00 lead 2h x",
        "from 9999-12-31 23:00 until 00:30 x",
    ],
)
def test_times_beyond_the_calendar_are_not_understood(text: str) -> None:
    with pytest.raises(g.GrammarError, match="out of range"):
        g.parse(text, now=NOW, tz=BERLIN)


def test_form_dates_beyond_the_calendar_are_refused() -> None:
    with pytest.raises(g.GrammarError, match="out of range"):
        g.local_moment("0001-01-01", "00:00", BERLIN)
