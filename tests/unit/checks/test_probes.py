"""Each kind of check against real targets: local HTTP servers, PostgreSQL, Redis, RQ, closed ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from rq import Queue, SimpleWorker, Worker

from bot.checks import runner as runner_module
from bot.checks.base import Status, safe_target
from bot.checks.probe import measure
from bot.checks.runner import CheckRunner
from bot.config import ServiceConfig
from bot.resilience import Breakers
from bot.sandbox.fakes.targets import TargetServer, silent_server
from tests.support.clock import FakeClock
from tests.support.ports import free_port

SLACK = 1.5  # seconds a deadline may overrun on a loaded 2-core CI machine; a hang would overrun far more


def service(**fields: Any) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "svc", **fields})


@pytest.fixture
async def runner(clock: FakeClock) -> AsyncIterator[CheckRunner]:
    checks = CheckRunner(breakers=Breakers(clock=clock), clock=clock, tz=ZoneInfo("Europe/Berlin"))
    yield checks
    await checks.aclose()


async def test_http_up_reports_status_and_latency(runner: CheckRunner, targets: TargetServer) -> None:
    result = await runner.check(service(http={"url": targets.set("/up")}))
    assert result.status is Status.UP
    assert result.reason == "HTTP 200"
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000
    assert targets.hits["/up"] == 1


async def test_http_slow_over_slow_after(runner: CheckRunner, targets: TargetServer) -> None:
    url = targets.set("/slow", delay=0.3)
    result = await runner.check(service(http={"url": url}, slow_after="100ms"))
    assert result.status is Status.SLOW
    assert result.latency_ms is not None and result.latency_ms >= 300
    assert "slower than 100 ms" in result.reason


async def test_http_wrong_status_is_down(runner: CheckRunner, targets: TargetServer) -> None:
    result = await runner.check(service(http={"url": targets.set("/error", status=503)}))
    assert (result.status, result.reason) == (Status.DOWN, "HTTP 503, expected 200")


async def test_http_expected_non_200_status_is_up(runner: CheckRunner, targets: TargetServer) -> None:
    url = targets.set("/teapot", status=418)
    result = await runner.check(service(http={"url": url, "expect_status": 418}))
    assert result.status is Status.UP


async def test_http_hanging_target_is_cut_at_the_timeout(runner: CheckRunner, targets: TargetServer) -> None:
    url = targets.set("/hang", hang=True)
    started = time.perf_counter()
    result = await runner.check(service(http={"url": url}, timeout="500ms"))
    elapsed = time.perf_counter() - started
    assert (result.status, result.reason) == (Status.DOWN, "no answer within 0.5s")
    assert 0.5 <= elapsed < 0.5 + SLACK


async def test_http_body_and_json_conditions(runner: CheckRunner, targets: TargetServer) -> None:
    plain = targets.set("/plain", body="database: degraded")
    ok = await runner.check(service(http={"url": plain, "body_contains": "database"}))
    missing = await runner.check(service(name="other", http={"url": plain, "body_contains": "all good"}))
    assert ok.status is Status.UP
    assert (missing.status, missing.reason) == (Status.DOWN, "HTTP 200 but the body lacks 'all good'")

    url = targets.set("/json", json={"status": {"db": "down", "ok": True}, "workers": 3})
    checks = {
        ("status.db", "ok"): (Status.DOWN, 'status.db is "down", expected "ok"'),
        ("status.ok", True): (Status.UP, "HTTP 200"),
        ("workers", 3): (Status.UP, "HTTP 200"),
        ("status.cache", "ok"): (Status.DOWN, "JSON has no status.cache"),
    }
    for (field, expected), outcome in checks.items():
        result = await runner.check(
            service(
                name=f"j-{field.replace('.', '-')}", http={"url": url, "json_field": field, "json_equals": expected}
            )
        )
        assert (result.status, result.reason) == outcome, field
    not_json = await runner.check(service(name="nj", http={"url": plain, "json_field": "status"}))
    assert (not_json.status, not_json.reason) == (Status.DOWN, "HTTP 200 but the body is not JSON")


async def test_http_closed_port_is_down(runner: CheckRunner) -> None:
    result = await runner.check(service(http={"url": f"http://127.0.0.1:{free_port()}/healthz"}))
    assert (result.status, result.reason) == (Status.DOWN, "connection refused or unreachable")


async def test_tcp_open_and_closed(runner: CheckRunner, targets: TargetServer) -> None:
    port = int(targets.url.rsplit(":", 1)[1])
    up = await runner.check(service(tcp={"host": "127.0.0.1", "port": port}))
    dead_port = free_port()
    down = await runner.check(service(name="dead", tcp={"host": "127.0.0.1", "port": dead_port}))
    assert (up.status, up.reason) == (Status.UP, "connected")
    assert (down.status, down.reason) == (Status.DOWN, f"connection refused on port {dead_port}")


async def test_sql_against_real_postgres_and_sqlite(runner: CheckRunner, postgres_url: str, tmp_path: Any) -> None:
    as_platforms_give_it = postgres_url.replace("postgresql://", "postgres://", 1)  # no driver named
    pg = await runner.check(service(sql={"url": as_platforms_give_it}))
    lite = await runner.check(service(name="lite", sql={"url": f"sqlite:///{tmp_path / 'x.db'}"}))
    assert (pg.status, pg.reason) == (Status.UP, "SELECT 1 ok")
    assert lite.status is Status.UP


async def test_sql_dead_database_is_down_quickly(runner: CheckRunner) -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/test"
    started = time.perf_counter()
    result = await runner.check(service(sql={"url": url}, timeout="1s"))
    assert result.status is Status.DOWN
    assert "refused" in result.reason.lower() or "connect" in result.reason.lower(), result.reason
    assert time.perf_counter() - started < 1.0 + SLACK


async def test_redis_ping(runner: CheckRunner, redis_url: str) -> None:
    up = await runner.check(service(redis={"url": redis_url}))
    down = await runner.check(service(name="dead", redis={"url": f"redis://127.0.0.1:{free_port()}/0"}))
    assert (up.status, up.reason) == (Status.UP, "PONG")
    assert down.status is Status.DOWN and down.reason


async def test_rq_queue_failed_jobs_and_workers(runner: CheckRunner, redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    queue = Queue("payments", connection=conn)
    queue.enqueue("tests.support.rq_jobs.explode")
    worker = SimpleWorker([queue], connection=conn)
    worker.work(burst=True)  # in this thread (RQ wants the main thread): the job really runs and fails
    assert queue.failed_job_registry.count == 1
    for _ in range(3):
        queue.enqueue("tests.support.rq_jobs.succeed")

    def rq(name: str, **limits: Any) -> ServiceConfig:
        return service(name=name, rq={"redis_url": redis_url, "queue": "payments", **limits})

    within = await runner.check(rq("within", max_queued=3, max_failed=1))
    assert (within.status, within.reason) == (Status.UP, "3 queued, 1 failed, 0 workers")
    too_many = await runner.check(rq("too-many", max_queued=2, max_failed=0))
    assert (too_many.status, too_many.reason) == (
        Status.DOWN,
        "3 queued > 2, 1 failed > 0 (3 queued, 1 failed, 0 workers)",
    )
    no_workers = await runner.check(rq("no-workers", min_workers=1))
    assert (no_workers.status, no_workers.reason) == (Status.DOWN, "0 workers < 1 (3 queued, 1 failed, 0 workers)")

    live = Worker([queue], connection=conn, name="live-worker")
    live.register_birth()
    try:
        with_worker = await runner.check(rq("with-worker", min_workers=1))
        assert (with_worker.status, with_worker.reason) == (Status.UP, "3 queued, 1 failed, 1 worker")
    finally:
        live.register_death()
    conn.close()


async def test_rq_unreachable_redis_is_down(runner: CheckRunner) -> None:
    result = await runner.check(service(rq={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    assert result.status is Status.DOWN and "connect" in result.reason.lower(), result.reason


async def test_breaker_pauses_a_failing_target_then_probes_again(clock: FakeClock, targets: TargetServer) -> None:
    runner = CheckRunner(
        breakers=Breakers(failure_threshold=2, recovery_timeout=60, clock=clock),
        clock=clock,
        tz=ZoneInfo("Europe/Berlin"),
    )
    failing = service(http={"url": targets.set("/flaky", status=500)})
    try:
        for _ in range(2):
            assert (await runner.check(failing)).reason == "HTTP 500, expected 200"
        clock.advance(timedelta(seconds=30))
        paused = await runner.check(failing)
        # FakeClock starts 09:00 UTC = 10:00 in Berlin, when the first failure was seen
        assert (paused.status, paused.reason) == (Status.DOWN, "failing since 10:00, checks paused")
        assert targets.hits["/flaky"] == 2  # paused: the struggling target is left alone

        targets.set("/flaky", status=200)
        clock.advance(timedelta(seconds=31))  # the cool-down is over: one trial probe goes through
        recovered = await runner.check(failing)
        assert (recovered.status, recovered.reason) == (Status.UP, "HTTP 200")
        assert targets.hits["/flaky"] == 3
    finally:
        await runner.aclose()


@pytest.mark.parametrize("kind", ["sql", "redis", "rq"])
async def test_a_hung_server_is_cut_at_the_timeout(runner: CheckRunner, kind: str) -> None:
    async with silent_server() as port:
        check = {
            "sql": {"sql": {"url": f"postgres://postgres@127.0.0.1:{port}/test"}},
            "redis": {"redis": {"url": f"redis://127.0.0.1:{port}/0"}},
            "rq": {"rq": {"redis_url": f"redis://127.0.0.1:{port}/0"}},
        }[kind]
        started = time.perf_counter()
        result = await runner.check(service(timeout="500ms", **check))
        elapsed = time.perf_counter() - started
    assert (result.status, result.reason) == (Status.DOWN, "no answer within 0.5s")
    assert elapsed < 0.5 + SLACK


class StubbornProbe:
    """Swallows its cancellation and answers anyway, as some client libraries do."""

    target = "stubborn"

    async def __call__(self) -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        return "200"

    async def aclose(self) -> None:
        return None


async def test_a_late_answer_from_a_probe_that_swallows_cancellation_is_down(clock: FakeClock) -> None:
    breakers = Breakers(failure_threshold=5, recovery_timeout=60, clock=clock)
    result = await measure(
        "svc",
        StubbornProbe(),
        limit=0.05,
        slow_after=None,
        breakers=breakers,
        clock=clock,
        paused_reason=lambda _since: "paused",
    )
    assert (result.status, result.reason) == (Status.DOWN, "no answer within 0.05s")


async def test_a_probe_that_cannot_be_built_is_down_not_an_error(
    runner: CheckRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_driver(*_args: Any) -> Any:
        raise ModuleNotFoundError("No module named 'asyncpg'")

    monkeypatch.setattr(runner_module, "SqlProbe", no_driver)
    result = await runner.check(service(sql={"url": "postgres://postgres@127.0.0.1:1/test"}))
    assert (result.status, result.reason) == (Status.DOWN, "ModuleNotFoundError: No module named 'asyncpg'")


async def test_a_replaced_probe_is_closed(runner: CheckRunner, targets: TargetServer) -> None:
    first = service(http={"url": targets.set("/a")})
    await runner.check(first)
    old = runner.probe_for(first)
    closed: list[str] = []

    async def aclose() -> None:
        closed.append(old.target)

    old.aclose = aclose  # type: ignore[method-assign]
    result = await runner.check(service(http={"url": targets.set("/b")}))  # the configuration changed
    await runner.aclose()  # waits for the replaced probe's closing too
    assert result.status is Status.UP and closed == [old.target]


async def test_targets_never_carry_secrets() -> None:
    assert (
        safe_target("https://user:hunter2@api.example.com:8443/healthz?token=abc#x")
        == "https://api.example.com:8443/healthz"
    )
    assert safe_target("redis://:hunter2@[::1]:6380/0") == "redis://[::1]:6380/0"
    runner = CheckRunner(
        breakers=Breakers(failure_threshold=2, recovery_timeout=60), clock=FakeClock(), tz=ZoneInfo("UTC")
    )
    for check in (
        {"http": {"url": "https://u:hunter2@api.example.com/h?key=hunter2"}},
        {"redis": {"url": "redis://:hunter2@cache:6379/0"}},
        {"rq": {"redis_url": "redis://:hunter2@cache:6379/0", "queue": "q"}},
    ):
        assert "hunter2" not in runner.probe_for(service(**check)).target
    await runner.aclose()
