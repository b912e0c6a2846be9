"""The scheduler's ticks run one at a time, even when a cut tick takes a while to end."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.scheduler import with_deadline

STUBBORN = 0.5  # seconds a tick goes on after being cancelled (psycopg's cleanup of a cut query, say)


async def test_a_cut_tick_still_being_cancelled_is_not_overlapped_by_the_next_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """APScheduler (interval 0.05 s, max_instances=1) runs a tick cut after 0.1 s that ignores the
    cancellation for 0.5 s more: the next runs wait for it to end instead of running beside it."""
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    running = most = started = 0
    three_started, idle = asyncio.Event(), asyncio.Event()

    async def stubborn_tick() -> None:
        nonlocal running, most, started
        running += 1
        started += 1
        most = max(most, running)
        if started == 3:
            three_started.set()
        try:
            end = loop.time() + STUBBORN
            while (left := end - loop.time()) > 0:
                try:
                    await asyncio.sleep(left)
                except asyncio.CancelledError:
                    pass  # ignores the cancellation until it is done
        finally:
            running -= 1
            if started >= 3 and not running:
                idle.set()

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        with_deadline("stubborn tick", stubborn_tick, 0.1),
        "interval",
        seconds=0.05,
        id="stubborn",
        coalesce=True,
        max_instances=1,
    )
    scheduler.start()
    try:
        await asyncio.wait_for(three_started.wait(), timeout=10)
    finally:
        scheduler.shutdown(wait=False)
    await asyncio.wait_for(idle.wait(), timeout=10)  # leave no tick behind
    assert most == 1, f"{most} runs of the tick at once"
    # Our own lines only: stopping the scheduler may cancel a run in flight, which APScheduler reports.
    cuts = [r.getMessage() for r in caplog.records if r.name == "bot.scheduler" and "stubborn tick" in r.getMessage()]
    assert len(cuts) == 1 and "cut after 0.1s" in cuts[0], cuts  # the skipped runs log nothing


async def test_stopping_the_scheduler_mid_tick_ends_the_tick_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """A tick running when the server shuts down is cancelled by APScheduler's executor: the tick
    stops, and no "raised an exception" traceback lands in the log of every deploy."""
    caplog.set_level(logging.DEBUG)
    started, ended = asyncio.Event(), asyncio.Event()
    cancelled = False

    async def slow_tick() -> None:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            ended.set()

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        with_deadline("slow tick", slow_tick, 30), "interval", seconds=60, next_run_time=datetime.now(UTC)
    )
    scheduler.start()
    try:
        await asyncio.wait_for(started.wait(), timeout=10)
    finally:
        scheduler.shutdown(wait=False)
    await asyncio.wait_for(ended.wait(), timeout=10)
    for _ in range(3):  # let the cancelled run's wrapper and APScheduler's callback finish
        await asyncio.sleep(0)
    assert cancelled
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], errors
