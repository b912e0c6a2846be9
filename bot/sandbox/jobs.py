"""Real failed RQ jobs for the drills: enqueued, then run (and failed) by a burst worker in a thread."""

from __future__ import annotations

import asyncio
import logging

import redis
from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty


def charge_card(order: int) -> None:
    """The drill's job: the payment provider refuses, every time (until replayed against a fixed one)."""
    raise RuntimeError(f"order {order}: the payment provider said no (sandbox drill)")


class _ThreadWorker(SimpleWorker):
    """An RQ worker that can run outside the main thread: no signal handlers, timer-based timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


def _fail_jobs(url: str, queue: str, count: int) -> int:
    logging.getLogger("rq.worker").setLevel(logging.CRITICAL)  # the failures are the point: no tracebacks
    conn = redis.Redis.from_url(url)
    try:
        q = Queue(queue, connection=conn)
        for n in range(count):
            q.enqueue(charge_card, n + 1)
        _ThreadWorker([q], connection=conn).work(burst=True, logging_level="WARNING")
        return int(q.failed_job_registry.count)
    finally:
        conn.close()


async def seed_failed_jobs(url: str, queue: str = "default", count: int = 5) -> int:
    """Make `count` jobs fail in `queue`; returns how many failed jobs the queue now holds."""
    return await asyncio.to_thread(_fail_jobs, url, queue, count)
