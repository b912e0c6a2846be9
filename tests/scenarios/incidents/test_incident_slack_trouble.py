"""A claimed step runs and records its outcome whatever Slack does meanwhile (timeouts, refusals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bot.slack.ports
from bot.actions.base import ActionContext, ActionOutcome
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.clock import FakeClock
from tests.support.incidents import IncidentBot, declare, incident_bot, incident_config, text_of

RUN = "incident.step.run:"


async def test_a_step_runs_even_when_slack_times_out_around_it(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.slack.ports, "WEB_API_TIMEOUT", 0.2)  # Slack calls give up fast in this test
    async with incident_bot(
        database_url=database_url, config_dir=incident_config(tmp_path), fake=fake_slack, clock=clock
    ) as ibot:
        channel = await declare(ibot.bot)
        # chat.update hangs past the client's timeout: the "running" refresh raises a timeout, not SlackApiError
        fake_slack.delay("chat.update", 1.0)
        fresh = fake_slack.mark()
        await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0CAROL", channel_id=channel)
        await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
        assert ibot.actions.runs["rollback"] == 1

        # now the thread posts time out: the run still executes and the playbook message shows the result
        fake_slack.delay("chat.update", 0)
        fake_slack.delay("chat.postMessage", 1.0)
        fresh = fake_slack.mark()
        await ibot.bot.slack.block_action(RUN + "verify", user_id="U0CAROL", channel_id=channel)
        await fake_slack.wait_for(
            "chat.update",
            lambda c: "Verify database and queue*\n✅ succeeded" in blocks_text(c.args["blocks"]),
            after=fresh,
        )
        fake_slack.delay("chat.postMessage", 0)
        assert ibot.actions.runs["verify"] == 1
        incident = await ibot.bot.runtime.incidents.get(1)
        assert incident is not None
        states = {v.step.id: v.state.status for v in (await ibot.bot.runtime.incidents.playbook_view(incident)).steps}
        assert states["rollback"] == "succeeded" and states["verify"] == "succeeded"


class LeakyAction:
    """An action whose details carry what an http hook sends and gets back, credentials included."""

    def describe(self) -> str:
        return "POST https://deploy.example.com/rollback"

    def _details(self) -> dict[str, Any]:
        return {
            "status": 200,
            "url": "https://deploy.example.com/rollback",
            "headers": {"X-Deploy-Key": "hdr-s3cret"},
            "json": {"service": "api", "password": "body-s3cret"},
            "response": '{"session": "resp-s3cret"}',
            "login": {"api_token": "tok-s3cret", "user": "deployer"},
        }

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        return ActionOutcome(True, "would POST https://deploy.example.com/rollback", details=self._details())

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        return ActionOutcome(True, "rollback done", details=self._details())


async def test_step_outputs_in_slack_leave_out_bodies_and_secrets(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with incident_bot(
        database_url=database_url,
        config_dir=incident_config(tmp_path),
        fake=fake_slack,
        clock=clock,
        build_action=lambda action: LeakyAction(),
    ) as ibot:
        channel = await declare(ibot.bot)
        await ibot.bot.slack.block_action("incident.step.preview:rollback", user_id="U0CAROL", channel_id=channel)
        preview = await ibot.fake.wait_for_response(lambda r: "Preview of Roll back last deploy" in str(r.text))
        fresh = ibot.fake.mark()
        await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0CAROL", channel_id=channel)
        done = await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
        for shown in (str(preview.text), text_of(done)):
            assert "s3cret" not in shown
            assert '"status": 200' in shown and '"user": "deployer"' in shown and "[redacted]" in shown
        # the audit log keeps the full record (it is redacted by the audit chain itself)
        succeeded = [e for e in await ibot.bot.runtime.audit.latest(5) if e.action == "incident.step.succeeded"]
        assert "response" in succeeded[0].details["details"]


async def test_posting_the_playbook_again_tells_the_user_when_slack_refuses(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    ibot.fake.fail("chat.postMessage", "channel_not_found")
    await ibot.bot.slack.slash("/incident", "playbook", user_id="U0CAROL", channel_id=channel)
    reply = await ibot.fake.wait_for_response(lambda r: "playbook message" in str(r.text))
    assert reply.response_type == "ephemeral" and "channel_not_found" in str(reply.text)
    assert not [e for e in await ibot.bot.runtime.audit.latest(5) if e.action == "incident.playbook_posted"]


async def test_buttons_with_ids_no_database_can_hold_are_damaged_buttons(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    forged = [
        json.dumps({"i": 2**31, "a": 0}),
        json.dumps({"i": 2**63, "a": 0}),
        json.dumps({"i": 1, "a": 2**40}),
        json.dumps({"i": 0, "a": 0}),
        json.dumps({"i": True, "a": 0}),
    ]
    for action_id in (RUN + "rollback", "incident.step.preview:rollback"):
        for value in forged:
            mark = ibot.fake.mark()
            await ibot.bot.slack.block_action(action_id, value, user_id="U0CAROL", channel_id=channel)
            reply = await ibot.fake.wait_for_response(after=mark)
            assert "damaged" in str(reply.text), (action_id, value, reply.text)
    n = len(ibot.fake.responses)
    await ibot.bot.slack.block_action(
        "incident.freeze.lift", json.dumps({"i": 2**63}), user_id="U0CAROL", channel_id=channel
    )
    reply = await ibot.fake.wait_for_response(lambda r: r in ibot.fake.responses[n:])
    assert "damaged" in str(reply.text)
    assert ibot.actions.runs["rollback"] == 0 and ibot.actions.previews["rollback"] == 0
