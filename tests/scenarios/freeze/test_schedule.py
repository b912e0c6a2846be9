"""Reminders, start and end announcements from database state, with a FakeClock; restarts; recurring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Call
from bot.services.outbox import FIRST_RETRY
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock

DEPLOYS = "C0DEPLOYS"


def announcements(bot: BotHarness) -> list[str]:
    return [
        str(c.args.get("text"))
        for c in bot.fake.calls_to("chat.postMessage")
        if c.ok and c.args.get("channel") == DEPLOYS
    ]


def text_starts(prefix: str) -> Callable[[Call], bool]:
    return lambda call: str(call.args.get("text")).startswith(prefix)


async def tick_and_expect(bot: BotHarness, *texts: str) -> None:
    """Tick (the bot's own 1 s scheduler job may get there first: either way each is posted once)."""
    await bot.runtime.freezes.tick()
    for text in texts:
        await bot.fake.wait_for("chat.postMessage", lambda c, t=text: c.args.get("text") == t)  # type: ignore[misc]


async def test_create_then_reminders_then_start_then_end(bot: BotHarness) -> None:
    freezes = bot.runtime.freezes
    start = bot.clock.now() + timedelta(hours=2)
    await freezes.create(
        starts_at=start, ends_at=start + timedelta(hours=1), environment=None, reason="Demo Day", actor="U0CAROL"
    )
    await tick_and_expect(bot, "Freeze #1 on production: Demo Day")

    bot.clock.set(start - timedelta(hours=1))
    await tick_and_expect(bot, "Freeze #1 on production starts in 1h: Demo Day")
    bot.clock.advance(timedelta(minutes=20))
    await tick_and_expect(bot)  # nothing due between reminders
    bot.clock.set(start - timedelta(minutes=10))
    await tick_and_expect(bot, "Freeze #1 on production starts in 10m: Demo Day")
    bot.clock.set(start)
    await tick_and_expect(bot, "Freeze #1 on production has started: Demo Day")
    await tick_and_expect(bot)  # never twice
    bot.clock.set(start + timedelta(hours=1, seconds=1))
    await tick_and_expect(bot, "Freeze #1 on production has ended")

    assert announcements(bot) == [
        "Freeze #1 on production: Demo Day",
        "Freeze #1 on production starts in 1h: Demo Day",
        "Freeze #1 on production starts in 10m: Demo Day",
        "Freeze #1 on production has started: Demo Day",
        "Freeze #1 on production has ended",
    ]
    announced = [e.details["kind"] for e in await bot.runtime.audit.latest(20) if e.action == "freeze.announced"]
    assert announced == ["reminder", "reminder", "started", "ended"]


async def test_a_window_created_inside_the_reminder_period_skips_stale_reminders(bot: BotHarness) -> None:
    freezes = bot.runtime.freezes
    start = bot.clock.now() + timedelta(minutes=30)
    await freezes.create(
        starts_at=start, ends_at=start + timedelta(hours=1), environment=None, reason="Hotfix window", actor="U0CAROL"
    )
    await freezes.tick()
    bot.clock.set(start - timedelta(minutes=10))
    await tick_and_expect(bot, "Freeze #1 on production starts in 10m: Hotfix window")
    assert announcements(bot)[1:] == ["Freeze #1 on production starts in 10m: Hotfix window"]


async def test_cancelled_windows_say_nothing_more(bot: BotHarness) -> None:
    freezes = bot.runtime.freezes
    start = bot.clock.now() + timedelta(hours=2)
    window = await freezes.create(
        starts_at=start, ends_at=start + timedelta(hours=1), environment=None, reason="Demo", actor="U0CAROL"
    )
    await freezes.cancel(window.id, actor="U0CAROL")
    for moment in (start - timedelta(hours=1), start, start + timedelta(hours=2)):
        bot.clock.set(moment)
        assert await freezes.tick() == 0


async def test_restart_catch_up(database_url: str, tmp_path: Path, fake_slack: FakeSlack) -> None:
    """Down while reminders fell due: send the latest one if the window has not started, else skip them."""
    config = write_config(tmp_path / "config")
    clock = FakeClock()
    t0 = clock.now()
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
        await bot.runtime.freezes.create(
            starts_at=t0 + timedelta(hours=2),
            ends_at=t0 + timedelta(hours=3),
            environment=None,
            reason="Upcoming",
            actor="U0CAROL",
        )
        await bot.runtime.freezes.create(
            starts_at=t0 + timedelta(hours=3),
            ends_at=t0 + timedelta(hours=4),
            environment=None,
            reason="Started while down",
            actor="U0CAROL",
        )
        await bot.runtime.freezes.create(
            starts_at=t0 + timedelta(hours=2),
            ends_at=t0 + timedelta(hours=5),
            environment=None,
            reason="Ended while down",
            actor="U0CAROL",
        )
    fake_slack.reset()
    # Down from t0 until 3h05m later. #1 started at 2h and ended at 3h; #2 started at 3h.
    clock.set(t0 + timedelta(hours=1, minutes=55))
    async with running_bot(
        database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, migrate_first=False
    ) as bot:
        # #1's 1h and 10m reminders both fell due: only "starts in 5m" is sent.
        await tick_and_expect(
            bot,
            "Freeze #1 on production starts in 5m: Upcoming",
            "Freeze #3 on production starts in 5m: Ended while down",
        )
        assert announcements(bot) == [
            "Freeze #1 on production starts in 5m: Upcoming",
            "Freeze #3 on production starts in 5m: Ended while down",
        ]
    fake_slack.reset()
    clock.set(t0 + timedelta(hours=3, minutes=5))
    async with running_bot(
        database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, migrate_first=False
    ) as bot:
        await tick_and_expect(
            bot,
            "Freeze #1 on production has ended",
            "Freeze #2 on production has started: Started while down",
            "Freeze #3 on production has started: Ended while down",
        )
        assert sorted(announcements(bot)) == [
            "Freeze #1 on production has ended",
            "Freeze #2 on production has started: Started while down",  # no stale reminders for #2
            "Freeze #3 on production has started: Ended while down",
        ]


async def test_recurring_windows_are_materialized_once_and_follow_daylight_saving(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    config = write_config(
        tmp_path / "config",
        base=(
            "timezone: Europe/Berlin\nchannels: {deploys: C0DEPLOYS}\n"
            "freeze:\n  environments: [production, staging]\n  reminders: [1h]\n"
            "  recurring:\n    - {name: Weekend freeze, cron: '0 16 * * FRI', duration: 65h,"
            " environments: [production]}\n"
        ),
    )
    # Thursday 22 Oct 2026, summer time (CEST, UTC+2); clocks go back on Sunday 25 Oct.
    clock = FakeClock(datetime(2026, 10, 22, 14, 0, tzinfo=UTC))
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
        freezes = bot.runtime.freezes
        await freezes.tick()
        await freezes.tick()
        windows = await freezes.upcoming()
        assert [(w.starts_at, w.ends_at, w.recurring) for w in windows] == [
            # Fri 16:00 CEST = 14:00 UTC; 65 real hours later is Mon 08:00 CET (the clocks went back).
            (datetime(2026, 10, 23, 14, 0, tzinfo=UTC), datetime(2026, 10, 26, 7, 0, tzinfo=UTC), True)
        ]
        clock.set(datetime(2026, 10, 23, 13, 0, tzinfo=UTC))
        await tick_and_expect(bot, "Freeze #1 on production starts in 1h: Weekend freeze")
        clock.set(datetime(2026, 10, 23, 14, 0, tzinfo=UTC))
        await tick_and_expect(bot, "Freeze #1 on production has started: Weekend freeze")
        assert announcements(bot) == [
            "Freeze #1 on production starts in 1h: Weekend freeze",
            "Freeze #1 on production has started: Weekend freeze",
        ]
        assert (await freezes.gate("production")).frozen
        # The next Friday is in winter time: 16:00 CET = 15:00 UTC.
        clock.set(datetime(2026, 10, 29, 16, 0, tzinfo=UTC))
        await freezes.tick()
        nxt = [w for w in await freezes.upcoming() if w.id != 1]
        assert [(w.id, w.starts_at) for w in nxt] == [(2, datetime(2026, 10, 30, 15, 0, tzinfo=UTC))]
        assert await freezes.materialize_recurring(clock.now()) == 0  # idempotent, ids without gaps


async def test_an_announcement_slack_refused_is_posted_by_the_outbox_later_once(bot: BotHarness) -> None:
    freezes = bot.runtime.freezes
    start = bot.clock.now() + timedelta(minutes=5)
    await freezes.create(
        starts_at=start, ends_at=start + timedelta(hours=1), environment=None, reason="Demo Day", actor="U0CAROL"
    )
    await tick_and_expect(bot, "Freeze #1 on production: Demo Day")
    bot.fake.fail("chat.postMessage", "ratelimited", times=1)
    bot.clock.set(start)
    await freezes.tick()
    await bot.runtime.outbox.settle()
    assert "Freeze #1 on production has started: Demo Day" not in announcements(bot)
    assert await bot.runtime.outbox.dispatch() == 0  # not yet: it waits FIRST_RETRY
    bot.clock.advance(FIRST_RETRY)
    await bot.runtime.outbox.dispatch()
    await bot.fake.wait_for(
        "chat.postMessage", lambda c: c.args.get("text") == "Freeze #1 on production has started: Demo Day"
    )
    for _ in range(3):
        bot.clock.advance(timedelta(minutes=2))
        await freezes.tick()
        await bot.runtime.outbox.dispatch()
    assert announcements(bot).count("Freeze #1 on production has started: Demo Day") == 1
    announced = [e.details["kind"] for e in await bot.runtime.audit.latest(20) if e.action == "freeze.announced"]
    assert announced == ["started"]


async def test_a_slow_post_does_not_hold_up_the_others(bot: BotHarness) -> None:
    freezes = bot.runtime.freezes
    start = bot.clock.now() + timedelta(minutes=5)
    for i in range(8):
        await freezes.create(
            starts_at=start, ends_at=start + timedelta(hours=1), environment=None, reason=f"Window {i}", actor="U0CAROL"
        )
    await freezes.tick()
    bot.fake.delay("chat.postMessage", 1.0)
    bot.clock.set(start)
    posted = await asyncio.wait_for(freezes.tick(), 5)  # one after the other: at least 8 s
    assert posted in (0, 8)  # 0 if the bot's own scheduler tick got there first
    for i in range(1, 9):
        await bot.fake.wait_for("chat.postMessage", text_starts(f"Freeze #{i} on production has started"))


async def test_a_recurring_window_already_running_at_first_start_is_announced_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    config = write_config(
        tmp_path / "config",
        base=(
            "timezone: Europe/Berlin\nchannels: {deploys: C0DEPLOYS}\n"
            "freeze:\n  environments: [production]\n  reminders: [1h]\n"
            "  recurring:\n    - {name: Weekend freeze, cron: '0 16 * * FRI', duration: 65h}\n"
        ),
    )
    # Saturday 12:00 UTC: the bot starts for the first time in the middle of the weekend freeze.
    clock = FakeClock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
        await tick_and_expect(bot, "Freeze #1 on production has started: Weekend freeze")
        for _ in range(3):
            clock.advance(timedelta(minutes=1))
            await bot.runtime.freezes.tick()
        assert announcements(bot) == ["Freeze #1 on production has started: Weekend freeze"]
        assert (await bot.runtime.freezes.gate("production")).frozen
