"""The `rq_replay` action: requeue failed RQ jobs at a bounded rate, each job at most once.

RQ is synchronous, so each batch runs in a worker thread (`asyncio.to_thread`) with bounded
work: at most `batch_size` requeues per call, each Redis command under a socket timeout.
A job is claimed with SADD on a Redis set before it is requeued; SADD answering 0 means some
earlier replay (in this process, another replica, or last week) already requeued it, so a
job that fails again after its replay stays failed until someone looks at it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.registry import FailedJobRegistry

from bot.actions import _outbound
from bot.actions.base import ActionContext, ActionOutcome
from bot.config import RqReplayAction
from bot.resilience import CallPolicy, CircuitOpen, call_outbound

__all__ = ["CLAIM_TTL_SECONDS", "RqReplayStep", "claim_key"]

CLAIM_TTL_SECONDS = 90 * 24 * 3600   # forget claims after 90 days (failed jobs rarely live that long)
PAGE = 500
BATCH_CALL = CallPolicy(timeout=30.0, attempts=1, deadline=30.0)
PROGRESS_EVERY = 10.0                 # seconds between progress lines in the thread
TIME_BUDGET = 600.0                   # one press replays for at most 10 minutes, then reports


def claim_key(queue: str) -> str:
    """The Redis set of job ids guardrail has already requeued from `queue`."""
    return f"guardrail:rq_replay:{queue}:replayed"


@dataclass(frozen=True)
class _Counts:
    failed: int          # in the failed-job registry now
    unclaimed: int       # of those, never replayed by guardrail
    queued: int          # waiting in the queue


@dataclass
class _Batch:
    replayed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)   # claimed, but the job was gone or taken meanwhile
    exhausted: bool = False                             # no unclaimed failed jobs left


def _target(url: str) -> str:
    parts = urlsplit(url)  # never put the password into breaker names or messages
    return f"redis://{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


class _Replayer:
    """The synchronous RQ work; every method is called in a worker thread."""

    def __init__(self, url: str, queue: str) -> None:
        self.conn = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.queue = Queue(queue, connection=self.conn)
        self.registry = FailedJobRegistry(queue=self.queue)
        self.key = claim_key(queue)

    def _unclaimed(self, limit: int | None) -> tuple[list[str], int]:
        """Up to `limit` failed job ids never replayed (oldest first), and how many were looked at."""
        found: list[str] = []
        start = 0
        while True:
            ids = self.registry.get_job_ids(start, start + PAGE - 1)
            if not ids:
                return found, start
            claimed = self.conn.smismember(self.key, ids)
            found.extend(job_id for job_id, taken in zip(ids, claimed, strict=True) if not taken)
            start += len(ids)
            if limit is not None and len(found) >= limit:
                return found[:limit], start

    def counts(self) -> _Counts:
        unclaimed, seen = self._unclaimed(None)
        return _Counts(failed=seen, unclaimed=len(unclaimed), queued=self.queue.count)

    def queued(self) -> int:
        return self.queue.count

    def batch(self, size: int) -> _Batch:
        result = _Batch()
        candidates, _ = self._unclaimed(size + 1)   # one more than we take: are there more after this?
        result.exhausted = len(candidates) <= size
        for job_id in candidates[:size]:
            if not self.conn.sadd(self.key, job_id):
                continue                                   # another replay claimed it first
            self.conn.expire(self.key, CLAIM_TTL_SECONDS)
            try:
                self.registry.requeue(job_id)
            except (NoSuchJobError, InvalidJobOperation):
                result.vanished.append(job_id)             # expired, or requeued by hand meanwhile
                continue
            except Exception:
                # Not requeued (Redis went away mid-batch): release the claim so a later replay can do it.
                with contextlib.suppress(redis.RedisError):
                    self.conn.srem(self.key, job_id)
                raise
            result.replayed.append(job_id)
        return result

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class RqReplayStep:
    """Replay failed jobs. One press works for at most `time_budget` seconds (well inside the incident
    service's step deadline), then reports what it did and what remains; pressing again continues."""

    config: RqReplayAction
    reads: CallPolicy = _outbound.READS
    time_budget: float = TIME_BUDGET

    def describe(self) -> str:
        c = self.config
        limit = f", stopping if more than {c.max_queued} jobs are queued" if c.max_queued else ""
        return f"Requeue failed jobs of RQ queue {c.queue} at most {c.per_second:g} per second{limit}"

    async def _thread(self, ctx: ActionContext, func: Any, *, policy: CallPolicy, idempotent: bool) -> Any:
        async def call() -> Any:
            return await asyncio.to_thread(func)
        return await call_outbound(_target(self.config.redis_url), call, policy=policy, breakers=ctx.breakers,
                                   idempotent=idempotent)

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        c = self.config
        try:
            replayer = _Replayer(c.redis_url, c.queue)
        except ValueError as exc:
            return ActionOutcome(ok=False, summary=f"Cannot preview the replay of {c.queue}: bad redis_url ({exc})")
        try:
            counts: _Counts = await self._thread(ctx, replayer.counts, policy=self.reads, idempotent=True)
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Cannot preview the replay of {c.queue}: {_reason(exc)}")
        finally:
            await asyncio.to_thread(replayer.close)
        skipped = counts.failed - counts.unclaimed
        return ActionOutcome(
            ok=True,
            summary=f"Would requeue {counts.unclaimed} failed jobs of {c.queue} in batches of {c.batch_size} "
                    f"at most {c.per_second:g}/s" + (f"; {skipped} failed again after an earlier replay and stay "
                                                      "failed" if skipped else "")
                    + f"; {counts.queued} jobs queued now",
            details={"failed": counts.failed, "would_replay": counts.unclaimed, "queued": counts.queued})

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        c = self.config
        try:
            replayer = _Replayer(c.redis_url, c.queue)
        except ValueError as exc:
            return ActionOutcome(ok=False, summary=f"Did not replay {c.queue}: bad redis_url ({exc})")
        loop = asyncio.get_running_loop()
        started = last_progress = loop.time()
        replayed: list[str] = []
        vanished = 0
        stopped: str | None = None
        paused = False
        try:
            while True:
                # Never faster than per_second: batch k starts after (jobs so far / per_second) seconds.
                wait = started + len(replayed) / c.per_second - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if c.max_queued is not None:
                    queued = await self._thread(ctx, replayer.queued, policy=self.reads, idempotent=True)
                    if queued > c.max_queued:
                        stopped = f"stopped early: {queued} jobs queued (more than {c.max_queued})"
                        break
                batch: _Batch = await self._thread(ctx, lambda: replayer.batch(c.batch_size), policy=BATCH_CALL,
                                                   idempotent=False)
                replayed.extend(batch.replayed)
                vanished += len(batch.vanished)
                if batch.exhausted:
                    break
                if loop.time() - started >= self.time_budget:
                    paused = True
                    break
                if loop.time() - last_progress >= PROGRESS_EVERY:
                    last_progress = loop.time()
                    await _outbound.say(ctx, f"Replayed {len(replayed)} jobs of {c.queue} so far")
            counts: _Counts = await self._thread(ctx, replayer.counts, policy=self.reads, idempotent=True)
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Replay of {c.queue} failed after {len(replayed)} jobs: "
                                 f"{_reason(exc)}", details={"replayed": len(replayed), "job_ids": replayed[:100]})
        finally:
            await asyncio.to_thread(replayer.close)
        elapsed = loop.time() - started
        again = counts.failed - counts.unclaimed
        summary = (f"Replayed {len(replayed)} failed jobs of {c.queue}; {counts.unclaimed} remain to replay"
                   + (f"; {again} failed again after an earlier replay and were not requeued twice" if again else "")
                   + (f"; {vanished} had disappeared" if vanished else "")
                   + (f" ({stopped})" if stopped else "")
                   + (f" (paused after {self.time_budget:g}s so the step reports; press again to continue)"
                      if paused and counts.unclaimed else ""))
        return ActionOutcome(
            ok=stopped is None, summary=summary,
            details={"replayed": len(replayed), "remaining": counts.unclaimed, "failed_again": again,
                     "vanished": vanished, "queued": counts.queued, "seconds": round(elapsed, 3),
                     "stopped_early": stopped, "job_ids": replayed[:100]})


def _reason(exc: Exception) -> str:
    if isinstance(exc, CircuitOpen):
        return str(exc)
    if isinstance(exc, redis.RedisError):
        return f"Redis error: {type(exc).__name__}: {exc}"
    return _outbound.describe_failure(exc)


