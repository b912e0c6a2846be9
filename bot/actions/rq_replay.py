"""The `rq_replay` action: requeue failed RQ jobs at a bounded rate, each job at most once.

RQ is synchronous, so each batch runs in a worker thread (`asyncio.to_thread`) with bounded
work: at most `batch_size` requeues per call, each Redis command under a socket timeout, and a
deadline the thread itself checks before every job (cancelling an await does not stop a thread).
Thread-run calls are never retried, and the connection is closed only after every thread returned.
A job is claimed with SADD on a Redis set before it is requeued; SADD answering 0 means some
earlier replay (in this process, another replica, or last week) already requeued it, so a
job that fails again after its replay stays failed until someone looks at it.
The rate is kept per job by `_Pacer`, never per batch: no one-second window, however placed, holds
more than `per_second` requeues.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
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

CLAIM_TTL_SECONDS = 90 * 24 * 3600  # forget claims after 90 days (failed jobs rarely live that long)
PAGE = 500
BATCH_CALL = CallPolicy(timeout=30.0, attempts=1, deadline=30.0)
BATCH_SECONDS = 15.0  # a batch takes no new job after this (BATCH_CALL's 30 s is only a backstop)
PROGRESS_EVERY = 10.0  # seconds between progress lines in the thread
TIME_BUDGET = 600.0  # one press replays for at most 10 minutes, then reports


def claim_key(queue: str) -> str:
    """The Redis set of job ids guardrail has already requeued from `queue`."""
    return f"guardrail:rq_replay:{queue}:replayed"


@dataclass(frozen=True)
class _Counts:
    failed: int  # in the failed-job registry now
    unclaimed: int  # of those, never replayed by guardrail
    queued: int  # waiting in the queue


@dataclass
class _Batch:
    replayed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)  # claimed, but the job was gone or taken meanwhile
    exhausted: bool = False  # no unclaimed failed jobs left
    stop: threading.Event = field(default_factory=threading.Event)  # set when nobody awaits the batch any more


class _Pacer:
    """When the next requeue may start, so that no window of `window` seconds holds more than `limit` of them.

    A sliding log, not a token bucket: a bucket of capacity C lets C + rate jobs through in one second.
    Job i may start only once job i - limit *finished* at least `window` ago, so its enqueue (which lies
    between its start and its finish) is more than `window` after job i - limit's. Jobs are also spaced
    `window / limit` apart so they flow evenly, with a little slack (`window / 20`) so a thread that wakes
    up late catches up instead of losing rate. Times are plain floats (`time.monotonic()` in production),
    so the arithmetic is tested without waiting.
    """

    def __init__(self, per_second: float) -> None:
        # per_second 2.5 → at most 2 in any second; 0.5 → at most 1 in any 2 seconds.
        self.limit = max(1, math.floor(per_second))
        self.window = max(1.0, 1.0 / per_second)
        self.spacing = self.window / self.limit
        self.slack = self.window / 20
        self.finished: deque[float] = deque(maxlen=self.limit)
        self.due = -math.inf  # when the next job is due on the even schedule

    def next_start(self) -> float:
        """The earliest moment the next job may start."""
        earliest = self.due - self.slack
        if len(self.finished) == self.limit:
            # A millisecond to spare: RQ stamps enqueued_at from the wall clock, to the microsecond.
            earliest = max(earliest, self.finished[0] + self.window + 0.001)
        return earliest

    def record(self, started: float, finished: float) -> None:
        """A job was requeued: it started (after waiting for `next_start()`) and finished at these times."""
        self.due = max(self.due, started) + self.spacing
        self.finished.append(finished)


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

    def _unclaimed(self, limit: int | None, until: float = float("inf")) -> tuple[list[str], int]:
        """Up to `limit` failed job ids never replayed (oldest first), and how many were looked at;
        stops paging at `until` (time.monotonic())."""
        found: list[str] = []
        start = 0
        while time.monotonic() < until:
            ids = self.registry.get_job_ids(start, start + PAGE - 1)
            if not ids:
                return found, start
            claimed = self.conn.smismember(self.key, ids)
            found.extend(job_id for job_id, taken in zip(ids, claimed, strict=True) if not taken)
            start += len(ids)
            if limit is not None and len(found) >= limit:
                return found[:limit], start
        return found, start

    def counts(self) -> _Counts:
        """A constant number of Redis calls, whatever the registry's size (ZCARD, ZINTERCARD, LLEN)."""
        failed = int(self.conn.zcard(self.registry.key))
        try:
            again = int(self.conn.zintercard(2, [self.registry.key, self.key]))
        except redis.ResponseError:  # Redis < 7 has no ZINTERCARD: page through the registry instead
            unclaimed, seen = self._unclaimed(None)
            again = seen - len(unclaimed)
        return _Counts(failed=failed, unclaimed=max(failed - again, 0), queued=self.queued())

    def queued(self) -> int:
        return int(self.conn.llen(self.queue.key))

    def batch(self, size: int, until: float, pacer: _Pacer, result: _Batch) -> None:
        """Requeue up to `size` jobs into `result` at `pacer`'s rate, taking no new job whose turn comes at or
        after `until` (time.monotonic()) or once `result.stop` is set; `result` fills as it goes, so even a
        batch whose await timed out reports what it did."""
        candidates, _ = self._unclaimed(size + 1, until)  # one more than we take: are there more after this?
        result.exhausted = len(candidates) <= size and time.monotonic() < until
        for job_id in candidates[:size]:
            turn = pacer.next_start()
            if max(turn, time.monotonic()) >= until or result.stop.wait(max(turn - time.monotonic(), 0)):
                result.exhausted = False
                return
            started = time.monotonic()
            if not self.conn.sadd(self.key, job_id):
                continue  # another replay claimed it first
            self.conn.expire(self.key, CLAIM_TTL_SECONDS)
            try:
                self.registry.requeue(job_id)
            except (NoSuchJobError, InvalidJobOperation):
                result.vanished.append(job_id)  # expired, or requeued by hand meanwhile
                continue
            except Exception:
                # Not requeued (Redis went away mid-batch): release the claim so a later replay can do it.
                with contextlib.suppress(redis.RedisError):
                    self.conn.srem(self.key, job_id)
                raise
            pacer.record(started, time.monotonic())
            result.replayed.append(job_id)

    def close(self) -> None:
        self.conn.close()


class _Threads:
    """The worker threads one replay started: the connection is closed only once all of them returned."""

    def __init__(self, url: str, queue: str) -> None:
        self.replayer = _Replayer(url, queue)
        self.target = _target(url)
        self.running: list[asyncio.Future[Any]] = []

    async def call(self, ctx: ActionContext, func: Callable[[], Any], *, policy: CallPolicy) -> Any:
        """Run `func` in a thread under `policy`'s timeout and the target's breaker, exactly once: a timeout
        abandons the await, not the thread, so a retry would run beside it on the same connection."""

        async def call() -> Any:
            work = asyncio.ensure_future(asyncio.to_thread(func))
            self.running.append(work)
            return await asyncio.shield(work)

        return await call_outbound(
            self.target, call, policy=dataclasses.replace(policy, attempts=1), breakers=ctx.breakers
        )

    async def close(self) -> None:
        await asyncio.gather(*self.running, return_exceptions=True)
        await asyncio.to_thread(self.replayer.close)


@dataclass(frozen=True)
class RqReplayStep:
    """Replay failed jobs. One press works for at most `time_budget` seconds (well inside the incident
    service's step deadline), then reports what it did and what remains; pressing again continues."""

    config: RqReplayAction
    reads: CallPolicy = _outbound.READS  # its timeout only: calls run in a thread are never retried
    time_budget: float = TIME_BUDGET
    batch_call: CallPolicy = BATCH_CALL
    batch_seconds: float = BATCH_SECONDS

    def describe(self) -> str:
        c = self.config
        limit = f", stopping if more than {c.max_queued} jobs are queued" if c.max_queued else ""
        return f"Requeue failed jobs of RQ queue {c.queue} at most {c.per_second:g} per second{limit}"

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        c = self.config
        try:
            threads = _Threads(c.redis_url, c.queue)
        except ValueError as exc:
            return ActionOutcome(ok=False, summary=f"Cannot preview the replay of {c.queue}: bad redis_url ({exc})")
        try:
            counts: _Counts = await threads.call(ctx, threads.replayer.counts, policy=self.reads)
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Cannot preview the replay of {c.queue}: {_reason(exc)}")
        finally:
            await threads.close()
        skipped = counts.failed - counts.unclaimed
        return ActionOutcome(
            ok=True,
            summary=f"Would requeue {counts.unclaimed} failed jobs of {c.queue} in batches of {c.batch_size} "
            f"at most {c.per_second:g}/s"
            + (f"; {skipped} failed again after an earlier replay and stay failed" if skipped else "")
            + f"; {counts.queued} jobs queued now",
            details={"failed": counts.failed, "would_replay": counts.unclaimed, "queued": counts.queued},
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        c = self.config
        try:
            threads = _Threads(c.redis_url, c.queue)
        except ValueError as exc:
            return ActionOutcome(ok=False, summary=f"Did not replay {c.queue}: bad redis_url ({exc})")
        replayer = threads.replayer
        started = last_progress = time.monotonic()
        ends = started + self.time_budget
        pacer = _Pacer(c.per_second)
        batches: list[_Batch] = []

        def replayed() -> list[str]:
            return [job_id for b in batches for job_id in b.replayed]

        stopped: str | None = None
        paused = False
        try:
            try:
                while True:
                    # The thread paces each job; waiting for the first one's turn here keeps a slow rate
                    # from holding a worker thread (or spinning through empty batches).
                    turn = pacer.next_start()
                    if turn >= ends:
                        paused = True
                        break
                    if turn > time.monotonic():
                        await asyncio.sleep(turn - time.monotonic())
                    if c.max_queued is not None:
                        queued = await threads.call(ctx, replayer.queued, policy=self.reads)
                        if queued > c.max_queued:
                            stopped = f"stopped early: {queued} jobs queued (more than {c.max_queued})"
                            break
                    batch = _Batch()
                    batches.append(batch)
                    until = min(ends, time.monotonic() + self.batch_seconds)
                    await threads.call(
                        ctx,
                        functools.partial(replayer.batch, c.batch_size, until, pacer, batch),
                        policy=self.batch_call,
                    )
                    if batch.exhausted:
                        break
                    if time.monotonic() >= ends:
                        paused = True
                        break
                    if time.monotonic() - last_progress >= PROGRESS_EVERY:
                        last_progress = time.monotonic()
                        await _outbound.say(ctx, f"Replayed {len(replayed())} jobs of {c.queue} so far")
                counts: _Counts = await threads.call(ctx, replayer.counts, policy=self.reads)
            finally:
                for batch in batches:
                    batch.stop.set()  # a timed-out batch's thread takes no further job…
                await threads.close()  # …and the connection closes only once it returned
        except Exception as exc:
            done = replayed()
            return ActionOutcome(
                ok=False,
                summary=f"Replay of {c.queue} failed after {len(done)} jobs: {_reason(exc)}",
                details={"replayed": len(done), "job_ids": done[:100]},
            )
        elapsed = time.monotonic() - started
        done = replayed()
        vanished = sum(len(b.vanished) for b in batches)
        again = counts.failed - counts.unclaimed
        summary = (
            f"Replayed {len(done)} failed jobs of {c.queue}; {counts.unclaimed} remain to replay"
            + (f"; {again} failed again after an earlier replay and were not requeued twice" if again else "")
            + (f"; {vanished} had disappeared" if vanished else "")
            + (f" ({stopped})" if stopped else "")
            + (
                f" (paused after {self.time_budget:g}s so the step reports; press again to continue)"
                if paused and counts.unclaimed
                else ""
            )
        )
        return ActionOutcome(
            ok=stopped is None,
            summary=summary,
            details={
                "replayed": len(done),
                "remaining": counts.unclaimed,
                "failed_again": again,
                "vanished": vanished,
                "queued": counts.queued,
                "seconds": round(elapsed, 3),
                "stopped_early": stopped,
                "job_ids": done[:100],
            },
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, CircuitOpen):
        return str(exc)
    if isinstance(exc, redis.RedisError):
        return f"Redis error: {type(exc).__name__}: {exc}"
    return _outbound.describe_failure(exc)
