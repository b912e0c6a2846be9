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
AUDIT_ANCHOR_TICK_SECONDS = 60.0

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

    if runtime.audit.anchoring:
        async def audit_anchor() -> None:
            try:
                await runtime.audit.anchor_tick()
            except Exception:
                log.exception("audit anchor tick failed; the next tick retries")

        # Posts the chain's head when audit.anchor_every entries or audit.anchor_interval have passed.
        scheduler.add_job(audit_anchor, "interval", seconds=AUDIT_ANCHOR_TICK_SECONDS, id="audit.anchor",
                          replace_existing=True, coalesce=True, max_instances=1)
    return scheduler
