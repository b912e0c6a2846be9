"""An event due before the next 1 s freeze tick gets a tick of its own at its due time, so reminders,
starts and ends are not announced up to a second late; nothing extra is scheduled otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.scheduler import FREEZE_MIN_GAP, build_scheduler
from tests.support.bot import BotHarness


@pytest.fixture
async def paused(bot: BotHarness) -> AsyncIterator[AsyncIOScheduler]:
    """The bot's real scheduler, started paused: jobs are scheduled, none runs by itself."""
    scheduler = build_scheduler(bot.runtime)
    scheduler.start(paused=True)
    yield scheduler
    scheduler.shutdown(wait=False)


def due_tick_in(scheduler: AsyncIOScheduler) -> float | None:
    job = scheduler.get_job("freeze.tick.due")
    return None if job is None else (job.next_run_time - datetime.now(UTC)).total_seconds()


async def test_a_reminder_due_within_the_second_gets_a_tick_at_its_due_time(
    bot: BotHarness, paused: AsyncIOScheduler
) -> None:
    tick = paused.get_job("freeze.tick").func
    await tick()
    assert due_tick_in(paused) is None  # nothing scheduled: nothing extra

    start = bot.clock.now() + timedelta(hours=2)
    await bot.runtime.freezes.create(
        starts_at=start, ends_at=start + timedelta(hours=1), environment=None, reason="Demo", actor="U0CAROL"
    )
    await tick()
    assert due_tick_in(paused) is None  # its first reminder is an hour away

    bot.clock.set(start - timedelta(hours=1, seconds=0.6))  # the 1h reminder is due in 0.6 s
    await tick()
    wait = due_tick_in(paused)
    assert wait is not None and FREEZE_MIN_GAP < wait <= 0.6

    bot.clock.set(start - timedelta(hours=1) + timedelta(seconds=1))  # overdue (e.g. a batch left for later)
    paused.remove_job("freeze.tick.due")
    await tick()  # announces it; the 10m reminder is 50 minutes away
    assert due_tick_in(paused) is None
