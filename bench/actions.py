"""Benchmarks for the playbook actions: `python -m bench.actions` (needs Redis, TEST_REDIS_URL).

1. rq_replay throughput with no rate cap, and how closely `per_second` is kept.
2. The http action's overhead per call against a local hook.
3. The retry storm that does not happen: many failing idempotent calls against one target.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import redis
from rq import Queue

from bot.actions.http import HttpStep
from bot.actions.rq_replay import RqReplayStep
from bot.config import HttpAction, RqReplayAction
from bot.resilience import Breakers
from tests.support.actions import make_ctx
from tests.support.fake_hook import FakeHook
from tests.support.redis import redis_test_url
from tests.support.rq_jobs import charge_card
from tests.support.rq_worker import BurstWorker, busiest_second


def _failed_jobs(url: str, count: int) -> None:
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    q = Queue("default", connection=conn)
    with conn.pipeline() as pipe:
        for n in range(count):
            q.enqueue(charge_card, n, pipeline=pipe)
        pipe.execute()
    BurstWorker([q], connection=conn).run_burst()
    conn.close()


async def bench_replay(url: str) -> None:
    for count, per_second, batch in ((2000, 1_000_000, 200), (2000, 1_000_000, 50), (1000, 500, 50), (1000, 200, 50)):
        await asyncio.to_thread(_failed_jobs, url, count)
        step = RqReplayStep(RqReplayAction(redis_url=url, per_second=per_second, batch_size=batch))
        started = time.perf_counter()
        outcome = await step.run(make_ctx())
        seconds = time.perf_counter() - started
        cap = "no cap" if per_second >= 1_000_000 else f"per_second={per_second}"
        busiest = await asyncio.to_thread(_busiest_second, url)
        print(
            f"rq_replay {count} jobs, batch_size={batch}, {cap}: {outcome.details['replayed']} replayed in "
            f"{seconds:.2f}s = {outcome.details['replayed'] / seconds:,.0f} jobs/s; "
            f"at most {busiest} enqueued in any sliding second"
        )


def _busiest_second(url: str) -> int:
    conn = redis.Redis.from_url(url)
    ids = Queue("default", connection=conn).get_job_ids()
    conn.close()
    return busiest_second(url, ids)


async def bench_http() -> None:
    fake = FakeHook()
    async with fake.serve() as url:
        step = HttpStep(HttpAction.model_validate({"url": f"{url}/rollback", "json": {"service": "api"}}))
        ctx = make_ctx(breakers=Breakers())
        for _ in range(20):
            await step.run(ctx)
        timings = []
        for _ in range(300):
            started = time.perf_counter()
            outcome = await step.run(ctx)
            timings.append((time.perf_counter() - started) * 1000)
            assert outcome.ok
        timings.sort()
        print(
            f"http action, 300 sequential runs against a local hook: median {statistics.median(timings):.2f} ms, "
            f"p95 {timings[int(len(timings) * 0.95)]:.2f} ms (new client per run)"
        )


async def bench_storm() -> None:
    fake = FakeHook()
    async with fake.serve() as url:
        fake.faults.fail(503)
        step = HttpStep(
            HttpAction.model_validate(
                {"url": f"{url}/rollback", "timeout": "1s", "retry": {"attempts": 3, "backoff": "10ms"}}
            )
        )
        ctx = make_ctx(breakers=Breakers(failure_threshold=5, recovery_timeout=30))
        outcomes = await asyncio.gather(*(step.run(ctx) for _ in range(50)))
        print(
            f"50 concurrent presses of a failing idempotent http step (attempts: 3, breaker threshold 5): "
            f"{len(fake.requests)} requests reached the target (unguarded: 150); "
            f"{sum('calls paused' in o.summary for o in outcomes)} answered 'calls paused' without calling"
        )
        sequential = HttpStep(
            HttpAction.model_validate(
                {"url": f"{url}/rollback", "timeout": "1s", "retry": {"attempts": 3, "backoff": "10ms"}}
            )
        )
        fake.requests.clear()
        ctx = make_ctx(breakers=Breakers(failure_threshold=5, recovery_timeout=30))
        for _ in range(50):
            await sequential.run(ctx)
        print(f"50 sequential presses of the same step: {len(fake.requests)} requests reached the target")


async def main() -> None:
    logging.getLogger("rq.worker").disabled = True  # the failing jobs' tracebacks are expected
    with redis_test_url() as url:
        await bench_replay(url)
    await bench_http()
    await bench_storm()


if __name__ == "__main__":
    asyncio.run(main())
