"""`auto_rollback: true`: the alarm counts down with a Cancel button, then rolls back by itself."""

from __future__ import annotations

from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.changes import (
    break_after_deploy,
    button_value,
    buttons_of,
    text_of,
    watch_round,
    watched_bot,
)
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions

AUTO = "  auto_rollback: true\n  auto_rollback_after: 60s\n"


async def test_the_countdown_runs_out_and_the_rollback_runs_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    actions = FakeActions()
    async with watched_bot(database_url, tmp_path, fake_slack, clock, extra=AUTO, actions=actions) as (bot, target):
        alarm = await break_after_deploy(bot, target)
        assert buttons_of(alarm)[-1] == "Cancel automatic rollback"
        assert "Rolling back automatically at" in str(alarm.args["blocks"])
        mark = fake_slack.mark()
        for _ in range(3):  # 45 s: still counting down
            await watch_round(bot)
        assert actions.runs["rollback"] == 0
        await watch_round(bot)  # 60 s
        await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
        for _ in range(3):
            await watch_round(bot)
        assert actions.runs["rollback"] == 1
        audit = [e for e in await bot.runtime.audit.latest(100) if e.action == "change.rollback_claimed"]
        assert [(e.actor, e.details["automatic"]) for e in audit] == [("guardrail", True)]


async def test_cancel_stops_the_automatic_rollback(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    actions = FakeActions()
    async with watched_bot(database_url, tmp_path, fake_slack, clock, extra=AUTO, actions=actions) as (bot, target):
        alarm = await break_after_deploy(bot, target)
        mark = fake_slack.mark()
        await bot.slack.block_action(
            "changes.cancel_auto_rollback",
            button_value(alarm, "Cancel automatic rollback"),
            user_id="U0ERIN",
            channel_id="C0ALERTS",
        )
        told = await fake_slack.wait_for_response(lambda r: "cancelled by" in str(r.text), after=mark)
        assert told.response_type == "in_channel"
        for _ in range(8):  # two minutes: well past the countdown
            await watch_round(bot)
        assert actions.runs["rollback"] == 0
        assert not fake_slack.calls_to("conversations.create", after=mark)
        # A person can still decide to roll back.
        await bot.slack.block_action(
            "changes.rollback", button_value(alarm, "Roll back v142"), user_id="U0CAROL", channel_id="C0ALERTS"
        )
        await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
        assert actions.runs["rollback"] == 1
