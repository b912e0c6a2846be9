"""`rq`: an RQ queue's length, failed jobs and live workers against the configured limits.

RQ itself is synchronous, so this reads the same Redis keys RQ writes through redis.asyncio
(key names come from RQ's own classes, so they follow RQ's version): the queue list, the
failed-job registry (a sorted set scored by expiry) and the per-queue worker set, where a worker
counts only while its own key — which expires when it stops heart-beating — exists.
"""

from __future__ import annotations

import time

from redis.exceptions import RedisError
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from bot.checks.base import safe_target
from bot.checks.probe import Unhealthy
from bot.checks.redis import redis_client, redis_failure
from bot.config import RqCheck


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class RqProbe:
    def __init__(self, check: RqCheck, timeout: float) -> None:
        self.check = check
        self._client = redis_client(check.redis_url, timeout)
        name = check.queue
        self._queue_key = f"{Queue.redis_queue_namespace_prefix}{name}"
        self._failed_key = FailedJobRegistry.key_template.format(name)
        self._workers_key = WORKERS_BY_QUEUE_KEY % name

    @property
    def target(self) -> str:
        return f"{safe_target(self.check.redis_url)}#{self.check.queue}"

    async def __call__(self) -> str:
        try:
            queued, failed, worker_keys = await self._read()
            workers = 0
            if worker_keys:
                workers = int(await self._client.exists(*worker_keys))
        except RedisError as exc:
            raise await redis_failure(exc) from None
        check = self.check
        summary = f"{queued} queued, {failed} failed, {_plural(workers, 'worker')}"
        problems = []
        if check.max_queued is not None and queued > check.max_queued:
            problems.append(f"{queued} queued > {check.max_queued}")
        if check.max_failed is not None and failed > check.max_failed:
            problems.append(f"{failed} failed > {check.max_failed}")
        if workers < check.min_workers:
            problems.append(f"{_plural(workers, 'worker')} < {check.min_workers}")
        if problems:
            raise Unhealthy(f"{', '.join(problems)} ({summary})")
        return summary

    async def _read(self) -> tuple[int, int, list[str]]:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.llen(self._queue_key)
            # Entries scored before now have expired; RQ's own count() cleans them up first.
            pipe.zcount(self._failed_key, f"({time.time()}", "+inf")
            pipe.smembers(self._workers_key)
            queued, failed, members = await pipe.execute()
        return int(queued), int(failed), sorted(members)

    async def aclose(self) -> None:
        await self._client.aclose()
