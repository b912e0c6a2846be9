"""`/metrics`: what a Prometheus scrape sees after real traffic, parsed with Prometheus' own parser."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.db import migrate
from bot.metrics import Metrics, request_kind
from bot.sandbox.fakes.targets import TargetServer, target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.scheduler import _with_deadline
from bot.web import OUTBOX_COUNT_BOUND
from tests.support.bot import API_TOKEN, BotHarness, running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.tcp_proxy import faulty_proxy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


@pytest.fixture
async def watched(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[tuple[BotHarness, TargetServer]]:
    async with target_server() as targets:
        targets.set("/api"), targets.set("/checkout", status=500)
        config = write_config(
            tmp_path / "config",
            f"""
            services:
              - name: api
                http: {{url: "{targets.url}/api"}}
              - name: checkout
                http: {{url: "{targets.url}/checkout"}}
        """,
        )
        async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
            yield bot, targets


async def test_a_scrape_shows_requests_by_kind_health_by_service_and_breakers(
    watched: tuple[BotHarness, TargetServer],
) -> None:
    bot, _ = watched
    assert (await bot.slack.slash("/audit", "oops")).status_code == 200
    ts = bot.fake.next_ts()
    assert (await bot.slack.message("are we down?", ts=ts)).status_code == 200
    await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts)
    async with httpx.AsyncClient(base_url=bot.url) as http:
        gate = await http.get(
            "/api/v1/freeze", params={"environment": "production"}, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        refused = await http.get("/api/v1/freeze", params={"environment": "production"})
        scrape = await http.get("/metrics")
    assert gate.status_code == 200 and refused.status_code == 401
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    got = samples(scrape.text)

    assert value(got, "guardrail_requests_total", kind="slash_command", status="200") == 1
    assert value(got, "guardrail_requests_total", kind="event", status="200") == 1
    assert value(got, "guardrail_requests_total", kind="api", status="200") == 1
    assert value(got, "guardrail_requests_total", kind="api", status="401") == 1
    assert value(got, "guardrail_request_seconds_count", kind="slash_command") == 1
    assert value(got, "guardrail_request_seconds_count", kind="api") == 2
    assert (value(got, "guardrail_request_seconds_bucket", kind="event", le="3.0") or 0) >= 1  # acked within 3 s

    assert value(got, "guardrail_health_status", service="api", guardrail_health_status="up") == 1
    assert value(got, "guardrail_health_status", service="checkout", guardrail_health_status="down") == 1
    assert value(got, "guardrail_health_status", service="checkout", guardrail_health_status="up") == 0
    assert value(got, "guardrail_health_checks_total", service="checkout", status="down") == 1

    breakers = {dict(labels)["target"] for (name, labels) in got if name == "guardrail_breaker_state"}
    assert breakers  # one per probed target, closed after one failure
    assert all(value(got, "guardrail_breaker_state", target=t, guardrail_breaker_state="closed") == 1 for t in breakers)
    # the interrupted-steps sweep is submitted the moment the scheduler starts
    assert (value(got, "guardrail_scheduler_tick_lag_seconds", job="interrupted-steps sweep") or -1) >= 0
    assert value(got, "guardrail_outbox_backlog") == 0
    assert value(got, "guardrail_config_loaded") == 1
    assert value(got, "guardrail_config_problems") == 0
    # probes are not counted: a scrape every 15 s would drown the traffic
    assert not any(dict(labels).get("kind") == "other" for (_, labels) in got)


async def test_a_scrape_answers_at_once_when_the_database_does_not(
    postgres_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    migrate.upgrade(postgres_url)
    async with (
        faulty_proxy(postgres_url) as proxy,
        running_bot(
            database_url=proxy.url_for(postgres_url), config_dir=config_dir, fake=fake_slack, migrate_first=False
        ) as bot,
        httpx.AsyncClient(base_url=bot.url, timeout=30) as http,
    ):
        proxy.mode = "blackhole"  # connections open, nothing ever answers
        started = time.monotonic()
        scrape = await http.get("/metrics")
        took = time.monotonic() - started
        proxy.mode = "pass"
    assert scrape.status_code == 200
    assert took < OUTBOX_COUNT_BOUND + 1.0
    assert math.isnan(value(samples(scrape.text), "guardrail_outbox_backlog") or 0.0)


async def test_a_failing_scheduler_tick_is_counted_by_outcome() -> None:
    metrics = Metrics()
    calls = 0

    async def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("database gone")

    run = _with_deadline("freeze tick", tick, 1.0, metrics)
    for _ in range(3):
        await run()
    got = samples(metrics.render()[0].decode())
    assert value(got, "guardrail_scheduler_ticks_total", job="freeze tick", result="ok") == 2
    assert value(got, "guardrail_scheduler_ticks_total", job="freeze tick", result="failed") == 1


@pytest.mark.parametrize(
    ("path", "body", "content_type", "kind"),
    [
        ("/slack/events", b"token=x&command=%2Ffreeze&text=", "application/x-www-form-urlencoded", "slash_command"),
        (
            "/slack/events",
            b"payload=%7B%22type%22%3A%22block_actions%22",
            "application/x-www-form-urlencoded",
            "action",
        ),
        (
            "/slack/events",
            b"payload=%7B%22type%22%3A%22view_submission%22",
            "application/x-www-form-urlencoded",
            "view",
        ),
        ("/slack/events", b'{"type": "event_callback"}', "application/json", "event"),
        ("/api/v1/deploys", b"{}", "application/json", "api"),
    ],
)
def test_request_kinds(path: str, body: bytes, content_type: str, kind: str) -> None:
    assert request_kind(path, body, content_type) == kind
