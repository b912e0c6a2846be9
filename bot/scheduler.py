"""APScheduler ticks that call services. Nothing else lives here."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import deliveries
from bot.runtime import Runtime

DELIVERY_MEMORY = timedelta(hours=2)  # Slack retries for about an hour
# Freeze announcements are driven from database state; a 1 s tick keeps reminders < 2 s late and
# each tick is one indexed query when nothing is due.
FREEZE_TICK_SECONDS = 1.0
# The outbox is kicked right after each commit; this tick retries what failed and picks up what a
# crashed replica, or a process without Slack (the CLI), left behind.
OUTBOX_TICK_SECONDS = 2.0

log = logging.getLogger(__name__)


def build_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def forget_old_deliveries() -> None:
        async with runtime.db.unit_of_work() as session:
            await deliveries.forget_before(session, runtime.clock.now() - DELIVERY_MEMORY)

    # Stable ids and replace_existing: a restart re-registers instead of duplicating.
    scheduler.add_job(forget_old_deliveries, "interval", minutes=30, id="housekeeping.deliveries",
                      replace_existing=True, coalesce=True, max_instances=1)

    interval = runtime.health.watch_interval
    if interval is not None:
        # Ticks at the shortest watch_interval; the service checks only the services that are due.
        scheduler.add_job(runtime.health.watch_tick, "interval", seconds=max(interval.total_seconds(), 1.0),
                          id="health.watch", replace_existing=True, coalesce=True, max_instances=1)

    async def freeze_tick() -> None:
        try:
            await runtime.freezes.tick()
        except Exception:
            log.exception("freeze tick failed; the next tick retries from database state")

    scheduler.add_job(freeze_tick, "interval", seconds=FREEZE_TICK_SECONDS, id="freeze.tick",
                      replace_existing=True, coalesce=True, max_instances=1)

    async def outbox_tick() -> None:
        try:
            await runtime.outbox.dispatch()
        except Exception:
            log.exception("outbox dispatch failed; the next tick retries from database state")

    scheduler.add_job(outbox_tick, "interval", seconds=OUTBOX_TICK_SECONDS, id="outbox.dispatch",
                      replace_existing=True, coalesce=True, max_instances=1)
    return scheduler
