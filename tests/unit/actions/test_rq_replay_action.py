"""rq_replay against real Redis with real RQ jobs that really failed in a real (burst) worker."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from bot.actions import ActionOutcome, StepAction, rq_replay
from bot.resilience import CallPolicy
from tests.support.actions import FAST_READS, action_from, make_ctx
from tests.support.rq_jobs import charge_card, noop
from tests.support.rq_worker import BurstWorker, busiest_second, most_in_any_window


def replay(url: str, **options: object) -> StepAction:
    return action_from({"rq_replay": {"redis_url": url, "queue": "default", **options}})


def fail_jobs(url: str, count: int, *, queue: str = "default") -> list[str]:
    """Enqueue `count` jobs that raise, and let a burst worker run (and fail) them all."""
    conn = redis.Redis.from_url(url)
    q = Queue(queue, connection=conn)
    ids = [q.enqueue(charge_card, n).id for n in range(count)]
    BurstWorker([q], connection=conn).run_burst()
    assert FailedJobRegistry(queue=q).count == len(ids) + _already_failed(q, ids)
    for job in Job.fetch_many(ids[:3], connection=conn):
        result = job.latest_result() if job else None
        assert result is not None and "payment provider timed out" in (result.exc_string or ""), result
    conn.close()
    return ids


def _already_failed(q: Queue, ids: list[str]) -> int:
    return len(set(FailedJobRegistry(queue=q).get_job_ids()) - set(ids))


def state(url: str) -> tuple[list[str], list[str]]:
    """(queued job ids, failed job ids) of the default queue."""
    conn = redis.Redis.from_url(url)
    q = Queue("default", connection=conn)
    result = (q.get_job_ids(), FailedJobRegistry(queue=q).get_job_ids())
    conn.close()
    return result


def work_off(url: str) -> None:
    conn = redis.Redis.from_url(url)
    BurstWorker([Queue("default", connection=conn)], connection=conn).run_burst()
    conn.close()


async def test_replays_each_failed_job_once_and_never_twice(redis_url: str) -> None:
    ids = await asyncio.to_thread(fail_jobs, redis_url, 5)
    step = replay(redis_url, per_second=1000)
    assert step.describe() == "Requeue failed jobs of RQ queue default at most 1000 per second"
    outcome = await step.run(make_ctx())
    assert outcome.ok, outcome.summary
    assert outcome.summary == "Replayed 5 failed jobs of default; 0 remain to replay"
    queued, failed = state(redis_url)
    assert sorted(queued) == sorted(ids) and failed == []

    again = await step.run(make_ctx())
    assert again.summary == "Replayed 0 failed jobs of default; 0 remain to replay"

    # The replayed jobs fail again (the provider is still down): a second replay leaves them alone.
    await asyncio.to_thread(work_off, redis_url)
    third = await step.run(make_ctx())
    assert third.summary == (
        "Replayed 0 failed jobs of default; 0 remain to replay; 5 failed again after an "
        "earlier replay and were not requeued twice"
    )
    queued, failed = state(redis_url)
    assert queued == [] and sorted(failed) == sorted(ids)


async def test_preview_counts_and_changes_nothing(redis_url: str) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 3)
    outcome = await replay(redis_url, per_second=50, batch_size=2).preview(make_ctx())
    assert outcome.ok
    assert outcome.summary == "Would requeue 3 failed jobs of default in batches of 2 at most 50/s; 0 jobs queued now"
    queued, failed = state(redis_url)
    assert queued == [] and len(failed) == 3


async def test_never_faster_than_per_second(redis_url: str) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 15)
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await replay(redis_url, per_second=20, batch_size=5).run(make_ctx())
    elapsed = loop.time() - started
    assert outcome.details["replayed"] == 15
    # Three batches of 5 at 20/s: the second starts after 0.25 s, the third after 0.5 s.
    assert elapsed >= 0.5
    assert elapsed < 3


async def test_stops_early_when_the_queue_grows_past_max_queued(redis_url: str) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 6)
    conn = redis.Redis.from_url(redis_url)
    for _ in range(3):
        Queue("default", connection=conn).enqueue(noop)  # live traffic nobody is working off
    conn.close()
    outcome = await replay(redis_url, per_second=1000, batch_size=2, max_queued=4).run(make_ctx())
    assert not outcome.ok
    assert outcome.summary == (
        "Replayed 2 failed jobs of default; 4 remain to replay (stopped early: 5 jobs queued (more than 4))"
    )
    assert outcome.details["remaining"] == 4


async def test_two_replays_at_once_requeue_each_job_once(redis_url: str) -> None:
    ids = await asyncio.to_thread(fail_jobs, redis_url, 40)
    step = replay(redis_url, per_second=1000, batch_size=3)
    first, second = await asyncio.gather(step.run(make_ctx()), step.run(make_ctx()))
    assert first.details["replayed"] + second.details["replayed"] == 40
    queued, _ = state(redis_url)
    assert sorted(queued) == sorted(ids)  # every job once, none twice


async def test_unreachable_redis_is_a_clear_failure_and_opens_the_breaker() -> None:
    ctx = make_ctx()
    step = dataclasses.replace(replay("redis://:secret@127.0.0.1:1/0"), reads=FAST_READS)  # type: ignore[type-var]
    outcome: ActionOutcome = await step.preview(ctx)
    assert not outcome.ok
    assert outcome.summary.startswith("Cannot preview the replay of default: Redis error: ConnectionError")
    assert "secret" not in outcome.summary
    for _ in range(2):  # calls run in a thread are never retried: three presses, three failures
        assert not (await step.preview(ctx)).ok
    run = await step.run(ctx)
    assert run.summary == (
        "Replay of default failed after 0 jobs: redis://127.0.0.1:1/0 is failing since "
        "09:00:00 UTC; calls paused until 09:01:00 UTC"
    )


@pytest.mark.parametrize("per_second", [0, -1])
def test_per_second_must_be_positive(per_second: int) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        replay("redis://127.0.0.1:6379/0", per_second=per_second)


async def test_a_malformed_redis_url_is_an_outcome_not_an_exception() -> None:
    outcome = await replay("redis://127.0.0.1:notaport/0").run(make_ctx())
    assert not outcome.ok and outcome.summary.startswith("Did not replay default: bad redis_url")


async def test_a_long_replay_pauses_to_report_and_the_next_press_continues(redis_url: str) -> None:
    ids = await asyncio.to_thread(fail_jobs, redis_url, 30)
    step = dataclasses.replace(replay(redis_url, per_second=20, batch_size=5), time_budget=0.3)  # type: ignore[type-var]
    first = await step.run(make_ctx())
    assert first.ok
    assert 5 <= first.details["replayed"] < 30
    assert first.summary.endswith("(paused after 0.3s so the step reports; press again to continue)")
    assert first.details["remaining"] == 30 - first.details["replayed"]
    replayed = first.details["replayed"]
    while replayed < 30:
        replayed += (await step.run(make_ctx())).details["replayed"]
    queued, failed = state(redis_url)
    assert sorted(queued) == sorted(ids) and failed == []


async def test_a_requeue_that_breaks_midway_releases_its_claim(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 3)
    original = FailedJobRegistry.requeue
    calls = 0

    def flaky(self: FailedJobRegistry, job_or_id: str, at_front: bool = False) -> Job:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise redis.ConnectionError("connection reset by peer")
        return original(self, job_or_id, at_front=at_front)

    monkeypatch.setattr(FailedJobRegistry, "requeue", flaky)
    broken = await replay(redis_url, per_second=1000).run(make_ctx())
    assert not broken.ok and "connection reset by peer" in broken.summary
    monkeypatch.setattr(FailedJobRegistry, "requeue", original)
    again = await replay(redis_url, per_second=1000).run(make_ctx())
    assert again.summary == "Replayed 2 failed jobs of default; 0 remain to replay"
    queued, failed = state(redis_url)
    assert len(queued) == 3 and failed == []


class SlowRequeue:
    """FailedJobRegistry.requeue taking `seconds` per job (a slow Redis), counting calls still in progress."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
        self.original = FailedJobRegistry.requeue
        self.seconds = seconds
        self.in_progress = 0

        def requeue(registry: FailedJobRegistry, job_or_id: str, at_front: bool = False) -> Job:
            self.in_progress += 1
            try:
                time.sleep(self.seconds)  # runs in the replay's worker thread, never on the event loop
                return self.original(registry, job_or_id, at_front=at_front)
            finally:
                self.in_progress -= 1

        monkeypatch.setattr(FailedJobRegistry, "requeue", requeue)


async def test_the_time_budget_is_kept_inside_a_batch(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 40)
    slow = SlowRequeue(monkeypatch, 0.02)
    step = dataclasses.replace(replay(redis_url, per_second=1000, batch_size=1000), time_budget=0.2)  # type: ignore[type-var]
    outcome = await step.run(make_ctx())
    assert outcome.ok and outcome.summary.endswith("press again to continue)")
    assert 0 < outcome.details["replayed"] < 40
    assert slow.in_progress == 0
    queued, _ = state(redis_url)
    assert len(queued) == outcome.details["replayed"] and outcome.details["remaining"] == 40 - len(queued)


async def test_a_timed_out_batch_stops_requeueing_before_the_step_reports(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 40)
    slow = SlowRequeue(monkeypatch, 0.02)
    step = dataclasses.replace(
        replay(redis_url, per_second=1000, batch_size=1000),  # type: ignore[type-var]
        batch_call=CallPolicy(timeout=0.2, attempts=1, deadline=1),
    )
    outcome = await step.run(make_ctx())
    assert not outcome.ok and "did not answer within 0.2s" in outcome.summary
    assert slow.in_progress == 0  # no thread still requeueing behind the report
    queued, _ = state(redis_url)
    assert 0 < len(queued) < 40
    assert outcome.summary.startswith(f"Replay of default failed after {len(queued)} jobs")
    assert len(queued) == outcome.details["replayed"]


async def test_counting_takes_a_constant_number_of_redis_calls(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await asyncio.to_thread(fail_jobs, redis_url, 30)
    await replay(redis_url, per_second=1000, batch_size=10).run(make_ctx())  # all 30 replayed…
    await asyncio.to_thread(work_off, redis_url)  # …and failed again
    await asyncio.to_thread(fail_jobs, redis_url, 5)
    monkeypatch.setattr(rq_replay, "PAGE", 4)  # paging through 35 ids would take 9 pages
    sent: list[str] = []
    original: Callable[..., Any] = redis.Redis.execute_command

    def counted(self: redis.Redis, *args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    preview = await replay(redis_url).preview(make_ctx())
    assert preview.details == {"failed": 35, "would_replay": 5, "queued": 0}
    assert sorted(sent) == ["LLEN", "ZCARD", "ZINTERCARD"]


async def test_never_more_than_per_second_in_any_sliding_second(redis_url: str) -> None:
    ids = await asyncio.to_thread(fail_jobs, redis_url, 500)
    outcome = await replay(redis_url, per_second=200).run(make_ctx())
    assert outcome.details["replayed"] == 500
    assert await asyncio.to_thread(busiest_second, redis_url, ids) <= 200


async def test_a_stalled_redis_does_not_make_the_replay_catch_up_in_a_burst(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await asyncio.to_thread(fail_jobs, redis_url, 300)
    original = FailedJobRegistry.requeue
    calls = 0

    def stalls_once(registry: FailedJobRegistry, job_or_id: str, at_front: bool = False) -> Job:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.sleep(0.3)  # Redis hangs for a moment (in the replay's worker thread)
        return original(registry, job_or_id, at_front=at_front)

    monkeypatch.setattr(FailedJobRegistry, "requeue", stalls_once)
    outcome = await replay(redis_url, per_second=200, batch_size=50).run(make_ctx())
    assert outcome.details["replayed"] == 300
    assert await asyncio.to_thread(busiest_second, redis_url, ids) <= 200


@pytest.mark.parametrize(("per_second", "limit", "window"), [(200, 200, 1.0), (2.5, 2, 1.0), (0.5, 1, 2.0)])
def test_the_pacer_keeps_any_window_under_the_cap_whatever_the_jitter(
    per_second: float, limit: int, window: float
) -> None:
    """Simulated time: a thread that sometimes wakes up late (the next jobs must not catch up in a burst) and
    requeues of varying length, each enqueueing anywhere between its start and its finish."""
    rng = random.Random(7)
    pacer = rq_replay._Pacer(per_second)
    spacing = window / limit
    now, enqueued = 0.0, []
    for _ in range(2000):
        now = max(now, pacer.next_start()) + rng.choice([0, 0, 0, rng.uniform(0, spacing)])  # late wake-ups
        finished = now + rng.uniform(0, 0.9 * spacing)
        enqueued.append(rng.choice([now, finished, rng.uniform(now, finished)]))
        pacer.record(now, finished)
        now = finished
    assert most_in_any_window(enqueued, window) <= limit
    assert len(enqueued) / enqueued[-1] > 0.6 * limit / window  # not much slower than allowed, even so
