"""Requests into /slack/events: signatures, redeliveries, malformed bodies, health probes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bot.db import migrate
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import BotHarness, running_bot
from tests.support.clock import FakeClock
from tests.support.tcp_proxy import faulty_proxy


async def _audit_count(bot: BotHarness) -> int:
    return len(await bot.runtime.audit.latest(1000))


async def test_unsigned_stale_and_forged_requests_get_401_and_change_nothing(bot: BotHarness) -> None:
    body = b"command=%2Faudit&text=&user_id=U0ALICE&channel_id=C0GENERAL"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    before = await _audit_count(bot)

    unsigned = await bot.slack.raw(body, form, sign=False)
    stale = await bot.slack.raw(body, form, timestamp=int(time.time()) - 6 * 60)
    forged = await bot.slack.raw(body, form, signature="v0=" + "0" * 64)

    assert [r.status_code for r in (unsigned, stale, forged)] == [401, 401, 401]
    assert await _audit_count(bot) == before
    assert bot.fake.calls_to("chat.postMessage") == []
    assert bot.fake.responses == []


async def test_malformed_signed_payloads_never_produce_a_5xx(bot: BotHarness) -> None:
    cases = [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"payload=%7Bbroken", {"Content-Type": "application/x-www-form-urlencoded"}),
        (
            b"payload=" + json.dumps({"type": "block_actions"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        (json.dumps({"type": "event_callback", "event": "nope"}).encode(), {"Content-Type": "application/json"}),
        (b"", {"Content-Type": "application/json"}),
        (b"\xff\xfe", {"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    for body, headers in cases:
        response = await bot.slack.raw(body, headers)
        assert response.status_code < 500, (body, response.status_code, response.text)


async def test_url_verification_is_answered(bot: BotHarness) -> None:
    response = await bot.slack.url_verification("challenge-123")
    assert response.status_code == 200
    assert "challenge-123" in response.text


async def test_a_redelivered_event_is_acknowledged_but_not_processed_twice(bot: BotHarness) -> None:
    first = await bot.slack.message("hello there", event_id="Ev0REDELIVER")
    again = await bot.slack.message("hello there", event_id="Ev0REDELIVER", retry_num=1)
    assert first.status_code == 200
    assert again.status_code == 200
    async with bot.runtime.db.reader() as session:
        from sqlalchemy import text

        rows = (await session.execute(text("SELECT key FROM processed_delivery"))).scalars().all()
    assert rows == ["event:Ev0REDELIVER"]


# /readyz while the database refuses, black-holes or strands connections (503 with the reason, within
# its bound): tests/scenarios/ops/test_database_outage.py, through a real outage.
async def test_healthz_and_readyz(bot: BotHarness) -> None:
    async with httpx.AsyncClient(base_url=bot.url) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["config_sha256"] == bot.runtime.loaded.sha256


async def test_readyz_is_503_with_reasons_when_the_database_is_gone(
    postgres_url: str, config_dir: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    migrate.upgrade(postgres_url)
    async with (
        faulty_proxy(postgres_url) as proxy,
        running_bot(
            database_url=proxy.url_for(postgres_url),
            config_dir=config_dir,
            fake=fake_slack,
            clock=clock,
            migrate_first=False,
        ) as bot,
        httpx.AsyncClient(base_url=bot.url) as http,
    ):
        assert (await http.get("/readyz")).status_code == 200
        proxy.mode = "refuse"  # the server went away: its connections are reset, new ones refused
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reasons"][0].startswith("database")


async def test_an_event_is_still_answered_when_its_redelivery_claim_cannot_be_written(
    database_url: str, config_dir: Path, fake_slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.db.engine import Database
    from bot.runtime import Overrides
    from bot.services.deliveries import Deliveries

    nowhere = Database("postgresql://nobody@127.0.0.1:1/none")  # the claim cannot be written
    try:
        async with running_bot(
            database_url=database_url,
            config_dir=config_dir,
            fake=fake_slack,
            clock=clock,
            overrides=Overrides(deliveries=Deliveries(nowhere, clock)),
        ) as bot:
            response = await bot.slack.message("are we down?", ts="1700000000.000900", event_id="Ev0NODB")
            assert response.status_code == 200
            await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == "1700000000.000900")
        assert "could not claim event Ev0NODB" in caplog.text  # the fault was there
    finally:
        await nowhere.dispose()


async def test_a_timestamp_that_is_not_a_number_is_401_not_500(bot: BotHarness) -> None:
    body = b"command=%2Faudit&text=&user_id=U0ALICE&channel_id=C0GENERAL"
    for timestamp in ("abc", "", "1e10"):
        response = await bot.slack.raw(
            body,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
            sign=False,
        )
        assert response.status_code == 401, timestamp


async def test_interactions_in_shapes_slack_never_sends_are_400(bot: BotHarness) -> None:
    user = {"id": "U0ALICE"}
    shapes = [
        {"type": "block_actions", "user": user, "actions": []},
        {"type": "block_actions", "user": user, "actions": [{}]},
        {"type": "block_actions", "user": user, "actions": ["x"]},
        {"type": "block_actions", "actions": [{"action_id": "a"}]},
        {"type": "block_actions", "user": "U0ALICE", "actions": [{"action_id": "a"}]},
        {"type": "block_actions", "user": user, "actions": [{"action_id": "a"}], "message": "hi"},
        {"type": "view_submission", "user": user, "view": "v"},
        {"type": "view_submission", "user": user, "view": {"callback_id": "c", "state": "s"}},
        {"type": "view_submission", "user": user, "view": {"callback_id": "c", "state": {"values": []}}},
        {"type": "view_submission", "user": user, "view": {"state": {"values": {}}}},
    ]
    for shape in shapes:
        body = ("payload=" + quote(json.dumps(shape))).encode()
        response = await bot.slack.raw(body, {"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400, shape
    slash_without_response_url = b"command=%2Faudit&text=&user_id=U0ALICE&channel_id=C0GENERAL"
    response = await bot.slack.raw(slash_without_response_url, {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    event = {"type": "event_callback", "event_id": "Ev0SHAPE", "event": {"type": "message", "channel": 42}}
    response = await bot.slack.raw(json.dumps(event).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 400


async def test_a_huge_paste_still_gets_a_reply(bot: BotHarness) -> None:
    await bot.slack.slash("/audit", "&" * 9000)
    reply = await bot.fake.wait_for_response()
    assert "Usage: `/audit [n]`" in reply.body["text"] and len(reply.body["text"]) < 1000


async def test_a_huge_mention_still_gets_an_answer_in_the_thread(bot: BotHarness) -> None:
    await bot.slack.app_mention("<@U0BOT> status " + "&" * 8100, ts="1700000000.000950")
    reply = await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == "1700000000.000950")
    assert len(reply.args["text"]) < 2000
