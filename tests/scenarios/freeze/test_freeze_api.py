"""`/api/v1/freezes`: release tooling and calendars create, list and cancel freeze windows over HTTP,
with the same rules, announcements and audit entries as `/freeze` in Slack."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.settings import Settings
from tests.support.bot import API_TOKEN, BotHarness, running_bot
from tests.support.clock import FakeClock
from tests.support.paths import ROOT

DEPLOYS = "C0DEPLOYS"
RELEASE_TOKEN = "release-bot-token-0123456789"
CALENDAR_TOKEN = "calendar-token-abcdefghijklmn"
RELEASE = {"Authorization": f"Bearer {RELEASE_TOKEN}"}
CALENDAR = {"Authorization": f"Bearer {CALENDAR_TOKEN}"}
LEGACY = {"Authorization": f"Bearer {API_TOKEN}"}
DEMO = {"environment": "production", "reason": "Demo Day", "duration": "2h"}


@pytest.fixture
async def bot(
    database_url: str, config_dir: Path, fake_slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    """The bot with GUARDRAIL_API_TOKEN and two named tokens beside it."""
    async with running_bot(
        database_url=database_url,
        config_dir=config_dir,
        fake=fake_slack,
        clock=clock,
        guardrail_api_tokens=f"release-bot:{RELEASE_TOKEN}, calendar:{CALENDAR_TOKEN}",
    ) as harness:
        yield harness


@pytest.fixture
async def api(bot: BotHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bot.url, timeout=10) as client:
        yield client


def in_deploys(text: str):  # type: ignore[no-untyped-def]
    return lambda c: c.args.get("channel") == DEPLOYS and text in str(c.args.get("text"))


async def test_a_window_created_over_the_api_is_announced_and_audited_as_the_token(
    bot: BotHarness, api: httpx.AsyncClient
) -> None:
    mark = bot.fake.mark()
    response = await api.post("/api/v1/freezes", json=DEMO, headers=RELEASE)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/api/v1/freezes/1"
    assert response.json() == {
        "id": 1,
        "environment": "production",
        "reason": "Demo Day",
        "starts_at": "2026-11-30T09:00:00+00:00",
        "ends_at": "2026-11-30T11:00:00+00:00",
        "state": "frozen_now",
        "created_by": "api:release-bot",
        "created_at": "2026-11-30T09:00:00+00:00",
        "cancelled_at": None,
        "cancelled_by": None,
        "recurring": False,
    }

    call = await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1"), after=mark)
    text = blocks_text(call.args["blocks"])
    assert "`api:release-bot` froze `production`: *Demo Day*" in text and "2026-11-30 10:00 CET" in text
    entry = (await bot.runtime.audit.latest(1))[0]
    assert (entry.action, entry.actor, entry.subject) == ("freeze.created", "api:release-bot", "freeze#1")

    # The gate CI asks sees it at once, and the listing shows it.
    gate = await api.get("/api/v1/freeze", params={"environment": "production"}, headers=CALENDAR)
    assert gate.status_code == 423 and gate.json()["window"]["id"] == 1
    listed = await api.get("/api/v1/freezes", headers=CALENDAR)
    assert [(w["id"], w["state"]) for w in listed.json()["freezes"]] == [(1, "frozen_now")]
    assert (await api.get("/api/v1/freezes", params={"environment": "staging"}, headers=CALENDAR)).json() == {
        "freezes": []
    }
    one = await api.get("/api/v1/freezes/1", headers=CALENDAR)
    assert one.status_code == 200 and one.json()["reason"] == "Demo Day"


async def test_start_and_end_times_with_offsets(bot: BotHarness, api: httpx.AsyncClient) -> None:
    body = {
        "environment": "staging",
        "reason": "Release 4.2",
        "starts_at": "2026-12-01T14:00:00+01:00",
        "ends_at": "2026-12-01T17:30:00Z",
    }
    response = await api.post("/api/v1/freezes", json=body, headers=CALENDAR)
    assert response.status_code == 201, response.text
    window = response.json()
    assert (window["starts_at"], window["ends_at"], window["state"], window["created_by"]) == (
        "2026-12-01T13:00:00+00:00",
        "2026-12-01T17:30:00+00:00",
        "upcoming",
        "api:calendar",
    )


async def test_the_single_token_still_works_and_is_audited_as_default(bot: BotHarness, api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/freezes", json=DEMO, headers=LEGACY)
    assert response.status_code == 201 and response.json()["created_by"] == "api:default"
    assert (await bot.runtime.audit.latest(1))[0].actor == "api:default"


async def test_a_token_cancels_its_own_windows_announced_and_audited(bot: BotHarness, api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/freezes", json=DEMO, headers=RELEASE)
    mark = bot.fake.mark()
    response = await api.delete("/api/v1/freezes/1", headers=RELEASE)
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["cancelled_by"]) == ("cancelled", "api:release-bot")
    await bot.fake.wait_for("chat.postMessage", in_deploys("was cancelled"), after=mark)
    entry = (await bot.runtime.audit.latest(1))[0]
    assert (entry.action, entry.actor) == ("freeze.cancelled", "api:release-bot")
    gate = await api.get("/api/v1/freeze", params={"environment": "production"}, headers=RELEASE)
    assert gate.status_code == 200

    again = await api.delete("/api/v1/freezes/1", headers=RELEASE)
    assert again.status_code == 409
    assert again.json()["error"] == "freeze window #1 was already cancelled by api:release-bot"


async def test_a_token_may_not_lift_a_freeze_it_did_not_create(bot: BotHarness, api: httpx.AsyncClient) -> None:
    await bot.slack.slash("/freeze", "for 2h Demo Day", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1"))
    await api.post("/api/v1/freezes", json=DEMO, headers=RELEASE)
    for window_id, headers in ((1, RELEASE), (2, CALENDAR), (2, LEGACY)):
        response = await api.delete(f"/api/v1/freezes/{window_id}", headers=headers)
        assert response.status_code == 403, response.text
        assert "a token cancels only its own windows" in response.json()["error"]
    assert [w.cancelled_at for w in await bot.runtime.freezes.upcoming()] == [None, None]


async def test_unknown_bad_and_ended_windows(bot: BotHarness, api: httpx.AsyncClient) -> None:
    for method in ("GET", "DELETE"):
        missing = await api.request(method, "/api/v1/freezes/42", headers=RELEASE)
        assert (missing.status_code, missing.json()) == (404, {"error": "there is no freeze window #42"})
        for bad in ("abc", "-1", "1.5", "%C2%B2", "9999999999", "%00"):
            response = await api.request(method, f"/api/v1/freezes/{bad}", headers=RELEASE)
            assert response.status_code == 422, (method, bad, response.text)
            assert response.json()["errors"] == {"id": "must be a window number, e.g. /api/v1/freezes/3"}
    await api.post("/api/v1/freezes", json=DEMO, headers=RELEASE)
    bot.clock.advance(timedelta(hours=3))
    ended = await api.delete("/api/v1/freezes/1", headers=RELEASE)
    assert (ended.status_code, ended.json()["error"]) == (409, "freeze window #1 has already ended")


async def test_a_missing_or_wrong_token_is_401(api: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": RELEASE_TOKEN},
        {"Authorization": f"Bearer {RELEASE_TOKEN}x"},
        {"Authorization": f"Bearer release-bot:{RELEASE_TOKEN}"},
    ):
        for method, url in (
            ("POST", "/api/v1/freezes"),
            ("GET", "/api/v1/freezes"),
            ("GET", "/api/v1/freezes/1"),
            ("DELETE", "/api/v1/freezes/1"),
        ):
            response = await api.request(method, url, json=DEMO if method == "POST" else None, headers=headers)
            assert response.status_code == 401, (headers, method, url)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"reason": "Demo", "duration": "2h"}, "environment", "is required; one of production, staging"),
        ({**DEMO, "environment": "moon"}, "environment", "unknown environment; one of production, staging"),
        ({**DEMO, "environment": ["production"]}, "environment", "unknown environment"),
        ({"environment": "production", "duration": "2h"}, "reason", "is required"),
        ({**DEMO, "reason": "   "}, "reason", "is required"),
        ({**DEMO, "reason": 7}, "reason", "must be a string"),
        ({**DEMO, "reason": "x" * 501}, "reason", "The reason is longer than 500 characters."),
        ({**DEMO, "reason": "Demo\u0000Day"}, "reason", "control character"),
        ({**DEMO, "reason": "Demo\ud800"}, "reason", "control character"),
        ({"environment": "production", "reason": "Demo"}, "ends_at", "is required (or give duration"),
        ({**DEMO, "ends_at": "2026-11-30T12:00:00Z"}, "duration", "give either ends_at or duration, not both"),
        ({**DEMO, "duration": "soon"}, "duration", "must be a duration like 30m, 2h"),
        ({**DEMO, "duration": "\uff102h"}, "duration", "must be a duration like 30m, 2h"),
        ({**DEMO, "duration": 7200}, "duration", "must be a duration like 30m, 2h"),
        ({**DEMO, "duration": "99999999d"}, "duration", "out of range"),
        ({**DEMO, "duration": "8d"}, "duration", "longer than freeze.max_duration (7d)"),
        ({**DEMO, "starts_at": "tomorrow"}, "starts_at", "must be an ISO 8601 date and time with a UTC offset"),
        ({**DEMO, "starts_at": "2026-12-01T14:00:00"}, "starts_at", "has no UTC offset"),
        ({**DEMO, "starts_at": 1764594000}, "starts_at", "must be an ISO 8601"),
        ({**DEMO, "starts_at": "0001-01-01T00:30:00+01:00"}, "starts_at", "out of range"),
        ({**DEMO, "starts_at": "9999-12-31T23:00:00Z"}, "duration", "out of range"),
        ({**DEMO, "starts_at": "2028-01-01T00:00:00Z"}, "starts_at", "more than a year ahead"),
        (
            {
                "environment": "production",
                "reason": "Back",
                "starts_at": "2026-12-01T14:00:00Z",
                "ends_at": "2026-12-01T13:00:00Z",
            },
            "ends_at",
            "The window ends before it starts.",
        ),
        (
            {
                "environment": "production",
                "reason": "Past",
                "starts_at": "2026-11-29T14:00:00Z",
                "ends_at": "2026-11-29T15:00:00Z",
            },
            "ends_at",
            "The window ends in the past.",
        ),
        ({**DEMO, "ends_at": "2026-12-01"}, "duration", "give either"),
        ({"environment": "production", "reason": "x", "ends_at": "2026-12-01"}, "ends_at", "has no UTC offset"),
        ({**DEMO, "approved": True}, "approved", "unknown field"),
        ([DEMO], "body", "must be a JSON object"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    api: httpx.AsyncClient, bot: BotHarness, body: object, field: str, message: str
) -> None:
    response = await api.post(
        "/api/v1/freezes",
        content=json.dumps(body),  # \ud800 escaped, as JSON allows
        headers={**RELEASE, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["errors"][field], response.json()
    assert "`" not in response.text and "*" not in response.text  # plain text, no Slack markup
    assert await bot.runtime.freezes.upcoming() == []


async def test_no_malformed_request_gets_a_5xx(api: httpx.AsyncClient) -> None:
    bodies = [
        b"",
        b"null",
        b"{}",
        b"{not json",
        b"\xff\xfe",
        b"[" * 16_000,
        b"1e999",
        b"x" * 70_000,
        b'{"environment": {"$gt": ""}, "reason": "x", "duration": "2h"}',
        b'{"environment": "production", "reason": "x", "duration": "2h", "\\ud800": 1}',
        b'{"environment": "production", "reason": "x", "starts_at": "\\ud800", "duration": "2h"}',
    ]
    for body in bodies:
        response = await api.post(
            "/api/v1/freezes", content=body, headers={**RELEASE, "Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (body[:40], response.status_code, response.text)
    for url in (
        "/api/v1/freezes?environment=%ff",
        "/api/v1/freezes?environment=a&environment=b",
        "/api/v1/freezes/" + "9" * 5000,
    ):
        response = await api.get(url, headers=RELEASE)
        assert 400 <= response.status_code < 500, (url, response.status_code)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("release-bot", "entry 1 is not name:token"),
        (RELEASE_TOKEN, "entry 1 is not name:token"),  # a bare token: not echoed
        (f"Release Bot:{RELEASE_TOKEN}", "entry 1: a name is 1-40 characters"),
        ("release-bot:short", "entry 1 (release-bot): the token must be at least 16 printable characters"),
        (f"a:{RELEASE_TOKEN},a:{CALENDAR_TOKEN}", "entry 2 (a): the name a is given twice"),
        (f"a:{RELEASE_TOKEN},b:{RELEASE_TOKEN}", "entry 2 (b): the token is the same as another entry's"),
        (f"default:{RELEASE_TOKEN}", "the name default is GUARDRAIL_API_TOKEN's"),
        (f"ci:{API_TOKEN}-long-enough", "the token named ci is also GUARDRAIL_API_TOKEN"),
    ],
)
def test_named_tokens_are_checked_when_the_settings_are_read(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, guardrail_api_token=f"{API_TOKEN}-long-enough", guardrail_api_tokens=value)
    assert message in str(raised.value)
    reported = " ".join(str(e["msg"]) for e in raised.value.errors())  # what `guardrail` prints
    assert RELEASE_TOKEN not in reported and CALENDAR_TOKEN not in reported


def test_named_tokens_beside_the_single_one() -> None:
    settings = Settings(
        _env_file=None,
        guardrail_api_token=API_TOKEN,
        guardrail_api_tokens=f" release-bot:{RELEASE_TOKEN} ,calendar:{CALENDAR_TOKEN}",
    )
    assert settings.api_tokens() == {API_TOKEN: "default", RELEASE_TOKEN: "release-bot", CALENDAR_TOKEN: "calendar"}
    only_named = Settings(_env_file=None, guardrail_api_tokens=f"release-bot:{RELEASE_TOKEN}")
    assert only_named.api_enabled and only_named.api_tokens() == {RELEASE_TOKEN: "release-bot"}
    assert not Settings(_env_file=None, guardrail_api_tokens="").api_enabled


async def test_a_retried_post_with_the_same_idempotency_key_creates_one_window(
    bot: BotHarness, api: httpx.AsyncClient
) -> None:
    keyed = {**RELEASE, "Idempotency-Key": "release-42-freeze"}
    first = await api.post("/api/v1/freezes", json=DEMO, headers=keyed)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1"))
    bot.clock.advance(timedelta(minutes=5))  # `duration` counts from now: the retry still matches
    retried = await asyncio.gather(*(api.post("/api/v1/freezes", json=DEMO, headers=keyed) for _ in range(3)))
    assert [r.status_code for r in retried] == [201] * 3
    assert all(r.json()["id"] == 1 and r.headers["idempotent-replayed"] == "true" for r in retried)

    other = await api.post("/api/v1/freezes", json={**DEMO, "reason": "Other"}, headers=keyed)
    assert other.status_code == 422
    assert other.json()["errors"] == {"Idempotency-Key": "was used for a different request; use a new key"}
    bad = await api.post("/api/v1/freezes", json=DEMO, headers={**RELEASE, "Idempotency-Key": "x" * 201})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json()["errors"]
    # Keys belong to their token: another tool's same key is its own request.
    theirs = await api.post("/api/v1/freezes", json=DEMO, headers={**CALENDAR, "Idempotency-Key": "release-42-freeze"})
    assert theirs.status_code == 201 and theirs.json()["id"] == 2

    created = [e for e in await bot.runtime.audit.latest(20) if e.action == "freeze.created"]
    assert [e.subject for e in created] == ["freeze#1", "freeze#2"]
    await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #2"))
    assert len([c for c in bot.fake.calls_to("chat.postMessage") if "Freeze #1" in str(c.args.get("text"))]) == 1


async def test_concurrent_first_attempts_with_one_key_create_one_window(
    bot: BotHarness, api: httpx.AsyncClient
) -> None:
    keyed = {**RELEASE, "Idempotency-Key": "ci-run-9"}
    answers = await asyncio.gather(*(api.post("/api/v1/freezes", json=DEMO, headers=keyed) for _ in range(4)))
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    assert {r.json()["id"] for r in answers if r.status_code == 201} == {1}
    pending = [r for r in answers if r.status_code == 409]
    assert all(r.headers["retry-after"] == "2" and "still being processed" in r.json()["error"] for r in pending)
    assert [w.id for w in await bot.runtime.freezes.upcoming()] == [1]


async def test_a_refused_request_frees_its_key(bot: BotHarness, api: httpx.AsyncClient) -> None:
    keyed = {**RELEASE, "Idempotency-Key": "calendar-sync-1"}
    refused = await api.post("/api/v1/freezes", json={**DEMO, "duration": "8d"}, headers=keyed)
    assert refused.status_code == 422
    fixed = await api.post("/api/v1/freezes", json=DEMO, headers=keyed)
    assert fixed.status_code == 201 and fixed.json()["id"] == 1


async def test_a_key_left_unresolved_by_a_stopped_process_is_never_a_second_window(
    bot: BotHarness, api: httpx.AsyncClient
) -> None:
    """The process stopped between creating the window and resolving the key: retries are told to check."""
    from bot.db import idempotency as keys
    from bot.services.idempotency import digest

    async with bot.runtime.db.unit_of_work() as session:
        assert await keys.claim(
            session, scope="freeze:api:release-bot", key="k-1", digest=digest(DEMO), at=bot.clock.now()
        )
    keyed = {**RELEASE, "Idempotency-Key": "k-1"}
    soon = await api.post("/api/v1/freezes", json=DEMO, headers=keyed)
    assert soon.status_code == 409 and "still being processed" in soon.json()["error"]
    bot.clock.advance(timedelta(minutes=2))
    later = await api.post("/api/v1/freezes", json=DEMO, headers=keyed)
    assert later.status_code == 409 and "may or may not have created a window" in later.json()["error"]
    assert await bot.runtime.freezes.upcoming() == []


async def test_the_curl_examples_in_the_docs_work_as_written(bot: BotHarness) -> None:
    page = (ROOT / "docs" / "freeze-api.md").read_text()
    examples = [block for block in re.findall(r"```sh\n(.*?)```", page, re.DOTALL) if "curl" in block]
    assert len(examples) == 3
    outputs = []
    for example in examples:
        process = await asyncio.create_subprocess_exec(  # not subprocess.run: the bot answers on this loop
            "bash",
            "-euo",
            "pipefail",
            "-c",
            example,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": os.environ["PATH"], "GUARDRAIL_URL": bot.url, "GUARDRAIL_TOKEN": RELEASE_TOKEN},
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, (example, out, err)
        outputs.append(out.decode())
    created = json.loads(outputs[0])
    assert (created["id"], created["created_by"], created["state"]) == (1, "api:release-bot", "frozen_now")
    assert json.loads(outputs[1])["starts_at"] == "2026-12-03T13:00:00+00:00"
    listed, shown, cancelled = json_values(outputs[2])
    assert [w["id"] for w in listed["freezes"]] == [1] and shown["reason"] == "Demo Day"
    assert cancelled["state"] == "cancelled"
    await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1 on production was cancelled"))


def json_values(text: str) -> list[Any]:
    """The JSON values printed one after another (curl adds no line break between answers)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text.strip()):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values
