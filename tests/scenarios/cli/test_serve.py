"""`guardrail serve` as a process: it starts without reaching Slack, and Socket Mode keeps HTTP up."""

from __future__ import annotations

from pathlib import Path

import httpx

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot
from tests.support.serve import serving, shipped_env


async def test_serve_starts_when_slack_is_unreachable(tmp_path: Path) -> None:
    async with serving(shipped_env(tmp_path), tmp_path / "serve.log") as base, httpx.AsyncClient(base_url=base) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200


async def test_socket_mode_serves_slack_over_a_websocket_and_http_keeps_serving(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    async with running_bot(
        database_url=sqlite_url,
        config_dir=config_dir,
        fake=fake_slack,
        slack_app_token="xapp-1-test",
        slack_signing_secret=None,
    ) as bot:
        ack = await fake_slack.socket_mode.send(
            "slash_commands",
            {
                "command": "/audit",
                "text": "oops",
                "user_id": "U0ALICE",
                "channel_id": "C0GENERAL",
                "team_id": "T0TEST",
                "response_url": fake_slack.response_url("socket"),
                "trigger_id": "1.2.3",
            },
        )
        reply = await fake_slack.wait_for_response(lambda r: r.name == "socket")
        async with httpx.AsyncClient(base_url=bot.url) as http:
            alive = await http.get("/healthz")
            events = await http.post("/slack/events", content=b"{}")
    assert "envelope_id" in ack
    assert "Usage: `/audit [n]`" in reply.body["text"]
    assert alive.status_code == 200
    assert events.status_code == 401  # no signing secret in Socket Mode: HTTP events are refused
