"""What `guardrail serve` says at start about optional features that are off, and the disabled API."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot


async def test_the_startup_line_says_which_features_are_off_and_why(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.server")
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack, guardrail_api_token=None):
        pass
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("features: "))
    assert "Slack over HTTP at /slack/events (SLACK_APP_TOKEN is not set)" in line
    assert "HTTP API /api/v1 (freeze gate, deploys): GUARDRAIL_API_TOKEN is not set" in line
    assert "audit signing: GUARDRAIL_AUDIT_KEY is not set" in line
    assert "audit anchoring: audit.anchor_channel is not set" in line
    assert "heroku actions: HEROKU_API_TOKEN is not set" in line


async def test_socket_mode_and_a_configured_api_are_not_listed_as_off(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.server")
    async with running_bot(
        database_url=sqlite_url,
        config_dir=config_dir,
        fake=fake_slack,
        slack_app_token="xapp-1-test",
        guardrail_audit_key="k" * 32,
    ):
        pass
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("features: "))
    assert line.startswith("features: Slack over Socket Mode")
    assert "HTTP API" not in line and "audit signing" not in line


async def test_a_disabled_api_answers_503_saying_why_instead_of_a_bare_401(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    async with (
        running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack, guardrail_api_token=None) as bot,
        httpx.AsyncClient(base_url=bot.url) as http,
    ):
        gate = await http.get(
            "/api/v1/freeze", params={"environment": "production"}, headers={"Authorization": "Bearer anything"}
        )
        deploy = await http.post("/api/v1/deploys", json={})
    for response in (gate, deploy):
        assert response.status_code == 503
        assert response.json() == {
            "error": "the API is disabled",
            "reason": "GUARDRAIL_API_TOKEN is not set on the guardrail server",
        }
