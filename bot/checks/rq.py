"""`rq`: an RQ queue's length, failed jobs and live workers against the configured limits.

RQ itself is synchronous, so this reads the same Redis keys RQ writes through redis.asyncio
(key names come from RQ's own classes, so they follow RQ's version): the queue list, the
failed-job registry (a sorted set scored by expiry) and the per-queue worker set, where a worker
counts only while its own key — which expires when it stops heart-beating — exists.

Besides those snapshot limits it judges two trends from a small per-target history
(`bot.checks.rq_trend`, on the injected clock): a retry storm (jobs failing faster than
`max_failed_per_minute`) and a crash loop (more workers born within `crash_window` than
`worker_start_limit`, or — when `workers` is set — no live worker while jobs wait).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.utils import utcparse
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from bot.checks.base import safe_target
from bot.checks.probe import Unhealthy
from bot.checks.redis import redis_client, redis_failure
from bot.checks.rq_trend import QueueHistory, Trend, WorkerSnapshot, per_minute
from bot.clock import Clock
from bot.config import RqCheck
from bot.config.durations import format_duration

_WORKER_FIELDS = ("birth", "failed_job_count", "successful_job_count", "death")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class RqProbe:
    def __init__(self, check: RqCheck, timeout: float, clock: Clock) -> None:
        self.check = check
        self._clock = clock
        self._client = redis_client(check.redis_url, timeout)
        name = check.queue
        self._queue_key = f"{Queue.redis_queue_namespace_prefix}{name}"
        self._failed_key = FailedJobRegistry.key_template.format(name)
        self._workers_key = WORKERS_BY_QUEUE_KEY % name
        self._history = QueueHistory(storm_window=check.storm_window, crash_window=check.crash_window)

    @property
    def target(self) -> str:
        return f"{safe_target(self.check.redis_url)}#{self.check.queue}"

    async def __call__(self) -> str:
        try:
            queued, failed, worker_keys = await self._read()
            snapshots = await self._workers(worker_keys)
        except RedisError as exc:
            raise await redis_failure(exc) from None
        # judged after the last await: concurrent rounds never interleave inside the history
        trend = self._history.record(self._clock.now(), registry_failed=failed, workers=snapshots)
        workers = sum(1 for s in snapshots if s is not None)
        summary = f"{queued} queued, {failed} failed, {_plural(workers, 'worker')}"
        problems = self._trend_problems(trend, queued=queued, workers=workers)
        check = self.check
        if check.max_queued is not None and queued > check.max_queued:
            problems.append(f"{queued} queued > {check.max_queued}")
        if check.max_failed is not None and failed > check.max_failed:
            problems.append(f"{failed} failed > {check.max_failed}")
        if workers < check.min_workers:
            problems.append(f"{_plural(workers, 'worker')} < {check.min_workers}")
        if problems:
            raise Unhealthy(f"{', '.join(problems)} ({summary})")
        return summary

    def _trend_problems(self, trend: Trend, *, queued: int, workers: int) -> list[str]:
        check = self.check
        problems = []
        if trend.workers_started > check.worker_start_limit:
            problems.append(
                f"worker crash-looping: {trend.workers_started} workers started in "
                f"{_window(check.crash_window)}, "
                f"{_plural(trend.jobs_finished, 'job')} finished"
            )
        elif check.workers is not None and workers == 0 and queued > 0 and check.min_workers == 0:
            problems.append(f"no worker alive while {queued} jobs are queued (expected {check.workers})")
        rate = trend.failed_per_minute
        if rate is not None and rate >= check.max_failed_per_minute:
            before = trend.failed_per_minute_before
            was = f" (was {per_minute(before)})" if before is not None else ""
            problems.append(f"retry storm: {per_minute(rate)} failed jobs/min{was}")
        return problems

    async def _read(self) -> tuple[int, int, list[str]]:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.llen(self._queue_key)
            # Entries scored before now have expired; RQ's own count() cleans them up first.
            pipe.zcount(self._failed_key, f"({time.time()}", "+inf")
            pipe.smembers(self._workers_key)
            queued, failed, members = await pipe.execute()
        return int(queued), int(failed), sorted(members)

    async def _workers(self, keys: list[str]) -> list[WorkerSnapshot]:
        """The registered workers whose key still exists (it expires without heartbeats)."""
        if not keys:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, *_WORKER_FIELDS)
            rows = await pipe.execute()
        snapshots = []
        for key, (birth, failed, finished, death) in zip(keys, rows, strict=True):
            if birth is None or death is not None:
                continue  # expired or dead, only not yet unregistered
            snapshots.append(
                WorkerSnapshot(
                    name=_text(key), born=_parse_birth(birth), failed=_count(failed), finished=_count(finished)
                )
            )
        return snapshots

    async def aclose(self) -> None:
        await self._client.aclose()


def _window(span: timedelta) -> str:
    minutes, seconds = divmod(int(span.total_seconds()), 60)
    return f"{minutes} min" if minutes and not seconds else format_duration(span)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _count(value: bytes | str | None) -> int:
    try:
        return max(0, int(_text(value))) if value is not None else 0
    except ValueError:
        return 0


def _parse_birth(value: bytes | str) -> datetime | None:
    try:
        return utcparse(_text(value))
    except ValueError:
        return None
