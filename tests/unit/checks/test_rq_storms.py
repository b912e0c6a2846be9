"""Retry storms and crash loops are health states: real Redis, real RQ workers and jobs, the
check's history on the injected clock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from rq import Queue, Retry, Worker

from bot.checks.base import Status
from bot.checks.runner import CheckRunner
from bot.config import ServiceConfig
from bot.resilience import Breakers
from tests.support.clock import FakeClock
from tests.support.paths import ROOT

ROUND = timedelta(seconds=30)


def rq_service(redis_url: str, **limits: Any) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "jobs", "rq": {"redis_url": redis_url, "queue": "payments", **limits}})


@pytest.fixture
def now_clock() -> FakeClock:
    # RQ stamps worker births with the real time; the injected clock starts there and moves on its own
    return FakeClock(datetime.now(UTC))


@pytest.fixture
async def runner(now_clock: FakeClock) -> AsyncIterator[CheckRunner]:
    checks = CheckRunner(breakers=Breakers(clock=now_clock), clock=now_clock, tz=ZoneInfo("UTC"))
    yield checks
    await checks.aclose()


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def worker_process(redis_url: str, conn: redis.Redis) -> Iterator[subprocess.Popen[bytes]]:
    """A real `rq worker` on the payments queue, registered before the test starts."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rq.cli",
            "worker",
            "--url",
            redis_url,
            "--path",
            str(ROOT),
            "--worker-class",
            "rq.worker.SimpleWorker",
            "--logging_level",
            "WARNING",
            "payments",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: conn.scard("rq:workers:payments") == 1, "the worker registered")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def attempts(conn: redis.Redis) -> tuple[int, int]:
    """(failed, finished) attempts of every registered worker, from RQ's worker hashes."""
    failed = finished = 0
    for name in conn.smembers("rq:workers:payments"):
        row = conn.hmget(name, "failed_job_count", "successful_job_count")
        failed += int(row[0] or 0)
        finished += int(row[1] or 0)
    return failed, finished


async def test_a_worker_that_fails_every_job_is_a_retry_storm_within_two_rounds(
    runner: CheckRunner,
    now_clock: FakeClock,
    conn: redis.Redis,
    redis_url: str,
    worker_process: subprocess.Popen[bytes],
) -> None:
    service = rq_service(redis_url, storm_window="30s")
    first = await runner.check(service)
    now_clock.advance(ROUND)
    calm = await runner.check(service)
    assert (first.status, calm.status) == (Status.UP, Status.UP), (first.reason, calm.reason)

    queue = Queue("payments", connection=conn)
    for _ in range(30):  # every attempt fails, and each job is retried twice: 90 failures
        queue.enqueue("tests.support.rq_jobs.explode", retry=Retry(max=2))
    await asyncio.to_thread(wait_until, lambda: attempts(conn)[0] == 90, "every attempt failed")

    now_clock.advance(ROUND)
    storm = await runner.check(service)
    assert storm.status is Status.DOWN
    assert storm.reason.startswith("retry storm: 180 failed jobs/min (was 0)"), storm.reason
    assert "30 failed" in storm.reason  # the registry holds each job once, after its last retry


async def test_retries_alone_are_a_storm_before_anything_reaches_the_failed_registry(
    runner: CheckRunner,
    now_clock: FakeClock,
    conn: redis.Redis,
    redis_url: str,
    worker_process: subprocess.Popen[bytes],
) -> None:
    service = rq_service(redis_url)
    await runner.check(service)
    queue = Queue("payments", connection=conn)
    # retried far into the future: nothing is registered as failed, every first attempt fails
    for _ in range(12):
        queue.enqueue("tests.support.rq_jobs.explode", retry=Retry(max=5, interval=3600))
    await asyncio.to_thread(wait_until, lambda: attempts(conn)[0] == 12, "every first attempt failed")
    assert queue.failed_job_registry.count == 0

    now_clock.advance(ROUND)
    storm = await runner.check(service)
    assert (storm.status, storm.reason) == (
        Status.DOWN,
        "retry storm: 24 failed jobs/min (0 queued, 0 failed, 1 worker)",
    )


async def test_a_healthy_queue_stays_up(
    runner: CheckRunner,
    now_clock: FakeClock,
    conn: redis.Redis,
    redis_url: str,
    worker_process: subprocess.Popen[bytes],
) -> None:
    service = rq_service(redis_url, workers=1)
    queue = Queue("payments", connection=conn)
    results = []
    for round_number in range(4):
        for _ in range(20):
            queue.enqueue("tests.support.rq_jobs.succeed")
        await asyncio.to_thread(
            wait_until, lambda n=round_number: attempts(conn)[1] == 20 * (n + 1), "the jobs finished"
        )
        results.append(await runner.check(service))
        now_clock.advance(ROUND)
    assert {(r.status, r.reason) for r in results} == {(Status.UP, "0 queued, 0 failed, 1 worker")}


def register_workers(conn: redis.Redis, count: int, prefix: str) -> list[Worker]:
    queue = Queue("payments", connection=conn)
    workers = [Worker([queue], connection=conn, name=f"{prefix}-{i}") for i in range(count)]
    for worker in workers:
        worker.register_birth()
    return workers


async def test_many_recently_born_workers_and_no_finished_jobs_is_a_crash_loop(
    runner: CheckRunner, now_clock: FakeClock, conn: redis.Redis, redis_url: str
) -> None:
    service = rq_service(redis_url, workers=2)
    baseline = await runner.check(service)
    again = register_workers(conn, 14, "looping")  # each one a restart of the two that should run
    now_clock.advance(ROUND)
    looping = await runner.check(service)
    for worker in again[:-1]:
        worker.register_death()
    now_clock.advance(ROUND)
    remembered = await runner.check(service)  # gone from the registry, remembered by the check

    assert baseline.status is Status.UP
    assert (looping.status, looping.reason) == (
        Status.DOWN,
        "worker crash-looping: 14 workers started in 5 min, 0 jobs finished (0 queued, 0 failed, 14 workers)",
    )
    assert (remembered.status, remembered.reason) == (
        Status.DOWN,
        "worker crash-looping: 14 workers started in 5 min, 0 jobs finished (0 queued, 0 failed, 1 worker)",
    )
    now_clock.advance(timedelta(minutes=5))
    assert (await runner.check(service)).status is Status.UP  # the window moved past the births


async def test_no_live_worker_while_jobs_wait_is_down_when_workers_are_expected(
    runner: CheckRunner, conn: redis.Redis, redis_url: str
) -> None:
    Queue("payments", connection=conn).enqueue("tests.support.rq_jobs.succeed")
    expected = await runner.check(rq_service(redis_url, workers=2))
    undeclared = await runner.check(rq_service(redis_url).model_copy(update={"name": "other"}))
    assert (expected.status, expected.reason) == (
        Status.DOWN,
        "no worker alive while 1 jobs are queued (expected 2) (1 queued, 0 failed, 0 workers)",
    )
    assert undeclared.status is Status.UP


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"crash_window": "5s"}, "must be between 30s and 1h"),
        ({"storm_window": "2h"}, "must be between 30s and 1h"),
        ({"max_failed_per_minute": 0}, "greater than 0"),
        ({"workers": 0}, "greater than or equal to 1"),
    ],
)
def test_storm_limits_are_validated(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rq_service("redis://127.0.0.1:6379/15", **limits)
