"""APScheduler ticks that call services. Nothing else lives here.

Every tick has a deadline (`tick_deadline`): a tick that hangs — on a database that stopped
answering, say — is cut, and the next tick starts from database state as usual. A cut tick may take
a while to end (psycopg's cancellation cleanup); until it has, further runs of that job are skipped,
so each job still runs one at a time. A run of failing ticks is logged once when it starts and once
when the ticks work again, not every second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.metrics import Metrics
from bot.resilience import give_up_after
from bot.runtime import Runtime

# Freeze announcements are driven from database state; each tick is two indexed queries when nothing
# is due (what is due now, when the next is). An event due before the next 1 s tick gets an extra
# tick at its due time, at most one per FREEZE_MIN_GAP, so announcements are not a second late.
FREEZE_TICK_SECONDS = 1.0
FREEZE_MIN_GAP = 0.2
AUDIT_ANCHOR_TICK_SECONDS = 60.0
# The outbox is kicked right after each commit; this tick retries what failed and picks up what a
# crashed replica, or a process without Slack (the CLI), left behind.
OUTBOX_TICK_SECONDS = 2.0
ROLLBACK_CHECK_DEADLINE = 120.0  # previews run concurrently, each within a minute

log = logging.getLogger(__name__)


def build_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    deadline = runtime.settings.tick_deadline
    metrics = runtime.metrics

    def with_deadline(
        name: str, tick: Callable[[], Awaitable[object]], deadline: float
    ) -> Callable[[], Awaitable[None]]:
        return _with_deadline(name, tick, deadline, metrics)

    def lag(event: JobSubmissionEvent) -> None:
        job = scheduler.get_job(event.job_id)
        if event.scheduled_run_times and job is not None:  # how late the tick starts (a busy loop shows first)
            late = datetime.now(UTC) - event.scheduled_run_times[-1]
            metrics.tick_lag.labels(job.name).set(max(late.total_seconds(), 0.0))

    scheduler.add_listener(lag, EVENT_JOB_SUBMITTED)

    def every(job_id: str, job: Callable[[], Awaitable[None]], seconds: float, **options: Any) -> None:
        """An interval job with a stable id and replace_existing (a restart re-registers it instead of
        duplicating it), its missed runs coalesced, never two runs at once."""
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            **options,
        )

    every(
        "housekeeping.deliveries",
        with_deadline("housekeeping.deliveries", runtime.deliveries.forget_old, deadline),
        30 * 60,
    )

    interval = runtime.health.watch_interval
    if interval is not None:
        # Ticks at the shortest watch_interval; the service checks only the services that are due.
        every(
            "health.watch",
            with_deadline("health watch", runtime.health.watch_tick, deadline),
            max(interval.total_seconds(), 1.0),
        )

    # Also at once on start: a step whose process died shows as interrupted without waiting a tick.
    every(
        "incidents.interrupted_sweep",
        with_deadline("interrupted-steps sweep", runtime.incidents.sweep_interrupted, deadline),
        runtime.incidents.leases.sweep_interval,
        next_run_time=datetime.now(UTC),
    )
    freeze_tick: list[Callable[[], Awaitable[None]]] = []

    async def tick_freezes() -> None:
        await runtime.freezes.tick()
        # An event due before the next interval tick gets a tick of its own at its due time (no
        # earlier than FREEZE_MIN_GAP from now), so it is announced on time, not up to a second late.
        wait = await runtime.freezes.seconds_to_next_event()
        if wait is not None and wait < FREEZE_TICK_SECONDS:
            scheduler.add_job(
                freeze_tick[0],
                "date",
                id="freeze.tick.due",
                replace_existing=True,
                run_date=datetime.now(UTC) + timedelta(seconds=max(wait, FREEZE_MIN_GAP)),
            )

    # Both jobs run the one deadline wrapper, whose guard keeps them from overlapping each other.
    freeze_tick.append(with_deadline("freeze tick", tick_freezes, deadline))
    every("freeze.tick", freeze_tick[0], FREEZE_TICK_SECONDS)

    if runtime.audit.anchoring:
        # Posts the chain's head when audit.anchor_every entries or audit.anchor_interval have passed.
        every(
            "audit.anchor",
            with_deadline("audit anchor tick", runtime.audit.anchor_tick, deadline),
            AUDIT_ANCHOR_TICK_SECONDS,
        )
    every("outbox.dispatch", with_deadline("outbox dispatch", runtime.outbox.dispatch, deadline), OUTBOX_TICK_SECONDS)
    # Every replica ticks; leases on the watches let one of them drive each watch.
    every(
        "changes.watch",
        with_deadline("change watch", runtime.changes.watch_tick, deadline),
        runtime.changes.watch_every.total_seconds(),
    )
    every(
        "changes.poll",
        with_deadline("change poll", runtime.changes.poll_tick, deadline),
        runtime.changes.poll_every.total_seconds(),
    )
    at = runtime.config.incidents.rollback_check_at
    if at is not None:
        # Every replica fires; the day's claim in the database lets one of them run it.
        hour, minute = (int(part) for part in at.split(":"))
        scheduler.add_job(
            with_deadline("rollback check", runtime.rollbacks.daily_tick, max(deadline, ROLLBACK_CHECK_DEADLINE)),
            "cron",
            hour=hour,
            minute=minute,
            timezone=runtime.config.tz,
            id="incidents.rollback_check",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
    # A tick still running when the next is due is skipped by APScheduler, which logs a warning
    # each time; the deadline bounds how long that lasts and reports it once, so those are noise.
    logging.getLogger("apscheduler.scheduler").addFilter(_skipped_runs)
    return scheduler


def with_deadline(name: str, tick: Callable[[], Awaitable[object]], deadline: float) -> Callable[[], Awaitable[None]]:
    """`tick`, cut after `deadline` seconds; failures logged once per run of failures, never raised."""
    return _with_deadline(name, tick, deadline, None)


def _with_deadline(
    name: str, tick: Callable[[], Awaitable[object]], deadline: float, metrics: Metrics | None
) -> Callable[[], Awaitable[None]]:
    failing = False
    last: asyncio.Future[object] | None = None

    async def run() -> None:
        nonlocal failing, last
        if last is not None and not last.done():
            # The last run was cut but is still being cancelled: APScheduler's max_instances=1 no
            # longer sees it, so this skip is what keeps the job from overlapping itself. The cut
            # was logged already; the skip is not.
            return
        last = asyncio.ensure_future(tick())
        try:
            await give_up_after(deadline, last)
        except asyncio.CancelledError:
            # The scheduler is shutting down: its executor cancels the runs in flight and APScheduler
            # logs a traceback for any that raise. A tick ended here resumes from database state at
            # the next start, so this is not an error: stop the tick and end quietly.
            last.cancel()
            return
        except Exception as exc:
            if not failing:
                why = (
                    f"cut after {deadline:g}s (the database is not answering?)"
                    if isinstance(exc, TimeoutError)
                    else f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                )
                log.warning(
                    "%s %s; the next ticks retry from database state (logged once until it works again)", name, why
                )
                log.debug("%s failure", name, exc_info=exc)
            failing = True
            if metrics is not None:
                metrics.tick(name, ok=False)
            return
        if metrics is not None:
            metrics.tick(name, ok=True)
        if failing:
            log.warning("%s works again", name)
            failing = False

    run.__qualname__ = name  # the job's name in APScheduler, and the `job` label of tick metrics
    return run


def _skipped_runs(record: logging.LogRecord) -> bool:
    return "maximum number of running instances reached" not in record.getMessage()
