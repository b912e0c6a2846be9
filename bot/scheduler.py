"""APScheduler ticks that call services. Nothing else lives here."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import deliveries
from bot.runtime import Runtime

DELIVERY_MEMORY = timedelta(hours=2)  # Slack retries for about an hour


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
    return scheduler
