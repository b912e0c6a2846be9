"""The gate CI asks: GET /api/v1/freeze, POST /api/v1/deploys, and `guardrail freeze check`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import API_TOKEN, BotHarness, running_bot
from tests.support.paths import ROOT

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DEPLOY = {
    "environment": "production",
    "service": "api",
    "version": "v1.4.2",
    "actor": "ci",
    "url": "https://ci.example.com/runs/7",
}


async def freeze_now(bot: BotHarness, environment: str = "production", hours: int = 2) -> int:
    window = await bot.runtime.freezes.create(
        starts_at=bot.clock.now(),
        ends_at=bot.clock.now() + timedelta(hours=hours),
        environment=environment,
        reason="Demo Day",
        actor="U0CAROL",
    )
    return window.id


@pytest.fixture
async def sqlite_bot(sqlite_url: str, config_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[BotHarness]:
    """The CLI runs in a subprocess (slow): once, on SQLite, is enough to prove its exit codes."""
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as harness:
        yield harness


@pytest.fixture
async def api(bot: BotHarness):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=bot.url, timeout=10) as client:
        yield client


async def test_gate_answers_200_when_open_and_423_with_the_window_when_frozen(
    bot: BotHarness, api: httpx.AsyncClient
) -> None:
    response = await api.get("/api/v1/freeze", params={"environment": "production"}, headers=AUTH)
    assert (response.status_code, response.json()) == (200, {"environment": "production", "frozen": False})

    window_id = await freeze_now(bot)
    response = await api.get("/api/v1/freeze", params={"environment": "production", "service": "api"}, headers=AUTH)
    assert response.status_code == 423
    assert response.json() == {
        "environment": "production",
        "frozen": True,
        "window": {
            "id": window_id,
            "reason": "Demo Day",
            "starts_at": "2026-11-30T09:00:00+00:00",
            "ends_at": "2026-11-30T11:00:00+00:00",
            "created_by": "U0CAROL",
        },
    }
    other = await api.get("/api/v1/freeze", params={"environment": "staging"}, headers=AUTH)
    assert other.status_code == 200


async def test_a_missing_or_wrong_token_is_401(api: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": API_TOKEN},
        {"Authorization": "Bearer " + API_TOKEN + "x"},
        {b"Authorization": "Bearer ünïcode".encode()},
    ):
        response = await api.get("/api/v1/freeze", params={"environment": "production"}, headers=headers)
        assert response.status_code == 401, headers
        response = await api.post("/api/v1/deploys", json=DEPLOY, headers=headers)
        assert response.status_code == 401, headers


async def test_bad_gate_queries_are_422(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/freeze", headers=AUTH)
    assert missing.status_code == 422 and "environment" in missing.json()["errors"]
    unknown = await api.get("/api/v1/freeze", params={"environment": "moon"}, headers=AUTH)
    assert unknown.status_code == 422 and "Unknown environment `moon`" in unknown.json()["errors"]["environment"]


async def test_a_deploy_is_recorded_announced_and_audited(bot: BotHarness, api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH)
    assert response.status_code == 201
    body = response.json()
    assert body["actor"] == "api:ci" and body["version"] == "v1.4.2" and body["id"] == 1
    call = await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "C0DEPLOYS")
    assert call.args["text"] == "api v1.4.2 deployed to production by api:ci"
    # the deploy is also recorded as a change (`change.recorded`, see docs/change-watch.md)
    entry = next(e for e in await bot.runtime.audit.latest(5) if e.action.startswith("freeze."))
    assert (entry.action, entry.actor, entry.subject) == ("freeze.deployed", "api:ci", "deploy#1")
    deploys = await bot.runtime.deploys.recent()
    assert [(d.service, d.version, d.actor) for d in deploys] == [("api", "v1.4.2", "api:ci")]
    listed = await api.get("/api/v1/deploys", headers=AUTH)
    assert listed.json()["deploys"][0]["version"] == "v1.4.2"


async def test_ci_gets_its_201_without_waiting_on_a_slow_slack(bot: BotHarness, api: httpx.AsyncClient) -> None:
    bot.fake.delay("chat.postMessage", 4.0)
    response = await asyncio.wait_for(api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH), 2.5)
    assert response.status_code == 201
    call = await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "C0DEPLOYS", timeout=10)
    assert call.args["text"] == "api v1.4.2 deployed to production by api:ci"


async def test_a_retried_post_with_the_same_idempotency_key_records_once(
    bot: BotHarness, api: httpx.AsyncClient
) -> None:
    keyed = {**AUTH, "Idempotency-Key": "run-7-attempt"}
    first = await api.post("/api/v1/deploys", json=DEPLOY, headers=keyed)
    await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "C0DEPLOYS")
    bot.clock.advance(timedelta(minutes=1))
    retried = await asyncio.gather(*(api.post("/api/v1/deploys", json=DEPLOY, headers=keyed) for _ in range(3)))
    assert first.status_code == 201 and [r.status_code for r in retried] == [201] * 3
    assert all(r.json() == first.json() for r in retried), [r.json() for r in retried]

    other = await api.post("/api/v1/deploys", json={**DEPLOY, "version": "v1.4.3"}, headers=keyed)
    assert other.status_code == 422 and "different deploy" in other.json()["errors"]["Idempotency-Key"]
    bad = await api.post("/api/v1/deploys", json=DEPLOY, headers={**AUTH, "Idempotency-Key": "x" * 201})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json()["errors"]
    unkeyed = await api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH)  # without a key: a new deploy
    assert unkeyed.status_code == 201 and unkeyed.json()["id"] == first.json()["id"] + 1

    deployed = [e for e in await bot.runtime.audit.latest(20) if e.action == "freeze.deployed"]
    assert [e.subject for e in deployed] == ["deploy#1", "deploy#2"]
    await bot.fake.wait_for("chat.postMessage", lambda c: len(bot.fake.calls_to("chat.postMessage")) >= 2)
    assert len(bot.fake.calls_to("chat.postMessage")) == 2


async def test_last_deploys_keeps_the_newest_per_service(bot: BotHarness, api: httpx.AsyncClient) -> None:
    for service, version in (("api", "v1"), ("web", "w1"), ("api", "v2")):
        bot.clock.advance(timedelta(minutes=1))
        assert (
            await api.post("/api/v1/deploys", json={**DEPLOY, "service": service, "version": version}, headers=AUTH)
        ).status_code == 201
    deploys = await bot.runtime.deploys.recent("production")
    assert [(d.service, d.version) for d in deploys] == [("api", "v2"), ("web", "w1")]


async def test_a_deploy_during_a_freeze_is_423_and_not_recorded(bot: BotHarness, api: httpx.AsyncClient) -> None:
    window_id = await freeze_now(bot)
    response = await api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH)
    assert response.status_code == 423 and response.json()["window"]["id"] == window_id
    assert await bot.runtime.deploys.recent() == []
    assert (await bot.runtime.audit.latest(1))[0].action == "freeze.deploy_blocked"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b"{not json", "body", "is not valid JSON"),
        (b"[1, 2]", "body", "must be a JSON object"),
        (b'"text"', "body", "must be a JSON object"),
        (b"\xff\xfe", "body", "is not valid JSON"),
        (b'{"environment": "production", "service": "api", "version": "v1"}', "actor", "is required"),
        (
            b'{"environment": "moon", "service": "api", "version": "v1", "actor": "ci"}',
            "environment",
            "unknown environment",
        ),
        (b'{"environment": "production", "service": 7, "version": "v1", "actor": "ci"}', "service", "must be a string"),
        (
            b'{"environment": "production", "service": "a b", "version": "v1", "actor": "ci"}',
            "service",
            "must be 1-100 characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", "url": "ftp://x"}',
            "url",
            "must be an http",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", "extra": 1}',
            "extra",
            "unknown field",
        ),
        (
            b'{"environment": null, "service": ["api"], "version": {}, "actor": "ci", "url": 5}',
            "url",
            "must be an http",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", "url": "http://[::1"}',
            "url",
            "must be an http",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", "url": "http://h:99999/"}',
            "url",
            "must be an http",
        ),
        (b"[" * 16_000, "body", "is nested too deeply"),
        # Lone surrogates cannot be encoded (a 500 before); NUL is refused by PostgreSQL (a 500 there).
        (
            b'{"environment": "production", "service": "api", "version": "\\ud800", "actor": "ci"}',
            "version",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "c\\ud800i"}',
            "actor",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1\\u0000", "actor": "ci"}',
            "version",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1\\u0085", "actor": "ci"}',
            "version",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1\\u2028x", "actor": "ci"}',
            "version",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api\\ud800", "version": "v1", "actor": "ci"}',
            "service",
            "must be 1-100 characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", '
            b'"url": "https://x.example/\\ud800"}',
            "url",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", '
            b'"url": "https://x.example/\\u0000"}',
            "url",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", '
            b'"url": "https://x.example/a\\nb"}',
            "url",
            "control characters",
        ),
        (
            b'{"environment": "production", "service": "api", "version": "v1", "actor": "ci", "\\ud800": 1}',
            "\\ud800",
            "unknown field",
        ),
    ],
)
async def test_a_wrong_deploy_body_is_422_with_field_errors(
    api: httpx.AsyncClient, body: bytes, field: str, message: str
) -> None:
    response = await api.post("/api/v1/deploys", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert message in response.json()["errors"][field]


async def run_cli(bot: BotHarness, *args: str, token: str = API_TOKEN) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_URL"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GUARDRAIL_API_TOKEN": token,
            "DATABASE_URL": bot.runtime.settings.database_url,
            "GUARDRAIL_CONFIG": str(bot.runtime.settings.guardrail_config),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "freeze",
        "check",
        *args,
        env=env,
        cwd=str(bot.runtime.settings.guardrail_config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_exit_codes_over_the_api(sqlite_bot: BotHarness) -> None:
    bot = sqlite_bot
    code, out, _ = await run_cli(bot, "--environment", "production", "--url", bot.url)
    assert code == 0 and "not frozen" in out
    await freeze_now(bot)
    code, out, _ = await run_cli(bot, "--environment", "production", "--service", "api", "--url", bot.url)
    assert code == 3 and "FROZEN: production is frozen by window #1" in out and "Demo Day" in out
    code, _, err = await run_cli(bot, "--environment", "production", "--url", bot.url, token="wrong")
    assert code == 2 and "refused the token (401)" in err
    code, _, err = await run_cli(bot, "--environment", "production", "--url", "http://127.0.0.1:9")
    assert code == 2 and "cannot ask http://127.0.0.1:9/api/v1/freeze" in err


async def test_cli_exit_codes_from_the_database(sqlite_bot: BotHarness) -> None:
    bot = sqlite_bot
    # The CLI reads the real clock: make a window around it.
    code, out, _ = await run_cli(bot, "--environment", "staging")
    assert code == 0, out
    now = datetime.now(UTC)
    bot.clock.set(now - timedelta(minutes=1))
    await bot.runtime.freezes.create(
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        environment="staging",
        reason="Load test",
        actor="U0CAROL",
    )
    code, out, _ = await run_cli(bot, "--environment", "staging")
    assert code == 3 and "Load test" in out
    code, _, err = await run_cli(bot, "--environment", "moon")
    assert code == 2 and "Unknown environment `moon`" in err


def test_cli_usage_errors_exit_2() -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_URL"))}
    env["PYTHONPATH"] = str(ROOT)
    help_ = subprocess.run(
        [sys.executable, "-m", "bot", "freeze", "check", "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert help_.returncode == 0 and "exit 0 when not frozen, 3 when frozen" in " ".join(help_.stdout.split())
    missing = subprocess.run(
        [sys.executable, "-m", "bot", "freeze", "check"], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 2 and "--environment" in missing.stderr


async def test_no_malformed_request_gets_a_5xx(api: httpx.AsyncClient) -> None:
    gets = [
        "/api/v1/freeze?environment=%00",
        "/api/v1/freeze?environment=" + "x" * 5000,
        "/api/v1/freeze?environment=production&service=" + "%ff" * 100,
        "/api/v1/freeze?environment[]=a",
        "/api/v1/deploys?environment=%ff%fe",
    ]
    for url in gets:
        response = await api.get(url, headers=AUTH)
        assert (response.status_code < 500 and response.status_code != 200) or url.startswith("/api/v1/deploys"), url
    bodies = [
        b"",
        b"null",
        b"{}",
        b'{"environment": {"$gt": ""}}',
        b"\x00" * 10,
        b"{" * 10000,
        b"1e999",
        b'{"environment": "production", "service": "api", "version": "' + b"v" * 300 + b'", "actor": "ci"}',
        b"x" * 20000,
    ]
    for body in bodies:
        response = await api.post("/api/v1/deploys", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (body[:40], response.status_code, response.text)
    unknown = await api.get("/api/v1/deploys", params={"environment": "moon"}, headers=AUTH)
    assert unknown.status_code == 422 and "unknown environment" in unknown.json()["errors"]["environment"]


async def test_a_query_parameter_given_twice_is_refused_not_guessed(bot: BotHarness, api: httpx.AsyncClient) -> None:
    await freeze_now(bot)
    cases = {
        "/api/v1/freeze?environment=nope&environment=production": "environment",
        "/api/v1/freeze?environment=production&environment=production": "environment",
        "/api/v1/freeze?environment=production&service=api&service=web": "service",
        "/api/v1/deploys?environment=production&environment=nope": "environment",
    }
    for url, field in cases.items():
        response = await api.get(url, headers=AUTH)
        assert response.status_code == 422, url
        assert response.json()["errors"] == {field: "is given more than once; give it once"}, url


async def test_a_body_over_64_kib_is_413_whether_or_not_its_length_is_declared(api: httpx.AsyncClient) -> None:
    padded = {**DEPLOY, "version": "v1"}
    small = json.dumps(padded).encode() + b" " * (60_000)
    assert (await api.post("/api/v1/deploys", content=small, headers=AUTH)).status_code == 201
    large = small + b" " * 6_000
    declared = await api.post("/api/v1/deploys", content=large, headers=AUTH)
    assert declared.status_code == 413 and "65536" in declared.json()["error"]

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to trust
        for _ in range(40):
            yield b" " * 4096

    streamed = await api.post("/api/v1/deploys", content=chunks(), headers=AUTH)
    assert streamed.status_code == 413
