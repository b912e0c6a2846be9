""" "Is it the deploy?": health answers, the incident header and the postmortem list recent changes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.changes import break_after_deploy, button_value, deploy, text_of, watched_bot
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions


async def test_the_health_answer_names_the_deploy_just_before_the_api_went_down(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with watched_bot(database_url, tmp_path, fake_slack, clock) as (bot, target):
        await deploy(bot, "v141", actor="ben")
        clock.advance(timedelta(hours=2))
        await deploy(bot, "v142", actor="ana")
        clock.advance(timedelta(minutes=3))
        target.set("/api", status=500)
        await bot.slack.slash("/health")
        reply = await fake_slack.wait_for_response()
        shown = json.dumps(reply.body["blocks"], ensure_ascii=False)
        assert "What changed recently (is it the deploy?)" in shown
        newest, older = shown.index("v142"), shown.index("v141")
        assert newest < older  # newest first
        assert "likely related* · :package: deploy: api v142 by @ana 3 min ago" in shown
        assert "deploy: api v141 by @ben 2 h ago" in shown
        assert shown.count("likely related") == 1  # v141 is 2 h older than the outage


async def test_the_rollback_incident_header_and_postmortem_list_the_change(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with watched_bot(database_url, tmp_path, fake_slack, clock, actions=FakeActions()) as (bot, target):
        alarm = await break_after_deploy(bot, target)
        mark = fake_slack.mark()
        await bot.slack.block_action(
            "changes.rollback", button_value(alarm, "Roll back v142"), user_id="U0CAROL", channel_id="C0ALERTS"
        )
        created = await fake_slack.wait_for("conversations.create", after=mark)
        channel = created.response["channel"]["id"]
        header = await fake_slack.wait_for(
            "chat.postMessage",
            lambda c: c.args.get("channel") == channel and text_of(c).startswith("Incident #1"),
            after=mark,
        )
        shown = json.dumps(header.args["blocks"], ensure_ascii=False)
        assert "likely related* · :package: deploy: api v142 by @ana" in shown
        draft = await bot.runtime.incidents.postmortem_markdown(1)
        assert "## Changes before the incident" in draft
        assert "| deploy | api | v142 | api:ana | likely related |" in draft
