"""Playbook steps as operations sees them: counted by outcome in /metrics, refused while draining."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.clock import FakeClock
from tests.support.fake_actions import Script
from tests.support.incidents import IncidentBot, declare, incident_bot, incident_config, text_of

RUN = "incident.step.run:"


@pytest.fixture
async def ibot(sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock) -> AsyncIterator[IncidentBot]:
    async with incident_bot(
        database_url=sqlite_url, config_dir=incident_config(tmp_path), fake=fake_slack, clock=clock
    ) as harness:
        yield harness


async def click_and_wait(ibot: IncidentBot, channel: str, step: str, verdict: str) -> None:
    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action(RUN + step, user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for("chat.postMessage", lambda c: f"* {verdict} after" in text_of(c), after=fresh)


async def test_step_runs_are_counted_by_outcome(ibot: IncidentBot) -> None:
    ibot.actions.scripts["verify"] = Script("fail")
    channel = await declare(ibot.bot)
    await click_and_wait(ibot, channel, "rollback", "succeeded")
    await click_and_wait(ibot, channel, "verify", "failed")
    async with httpx.AsyncClient(base_url=ibot.bot.url) as http:
        text = (await http.get("/metrics")).text
    runs = {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "guardrail_step_runs_total"
    }
    assert runs == {"succeeded": 1, "failed": 1}


async def test_a_click_while_shutting_down_is_refused_and_changes_nothing(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    assert await ibot.bot.runtime.steps_in_flight.drain(0) == 0  # what SIGTERM starts
    mark = ibot.fake.mark()
    await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0CAROL", channel_id=channel)
    told = await ibot.fake.wait_for_response(lambda r: "restarting" in str(r.text), after=mark)
    assert told.response_type == "ephemeral"
    assert "did not start that step; nothing was changed" in str(told.text)
    assert ibot.actions.runs["rollback"] == 0
    assert not [e for e in await ibot.bot.runtime.audit.latest(20) if e.action.startswith("incident.step.")]
