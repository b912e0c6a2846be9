"""The alarm's other buttons: [Not the deploy], [Declare incident], and any button whose data is damaged."""

from __future__ import annotations

from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.changes import break_after_deploy, button_value, watched_bot
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions


async def test_not_the_deploy_is_said_in_the_channel_and_a_second_press_is_told_who_said_it(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with watched_bot(database_url, tmp_path, fake_slack, clock) as (bot, target):
        value = button_value(await break_after_deploy(bot, target), "Not the deploy")
        await bot.slack.block_action("changes.not_the_deploy", value, user_id="U0ERIN", channel_id="C0ALERTS")
        told = await fake_slack.wait_for_response()
        assert told.response_type == "in_channel"
        assert told.text == "<@U0ERIN> says it is not v142; any automatic rollback of it is off."
        await bot.slack.block_action("changes.not_the_deploy", value, user_id="U0CAROL", channel_id="C0ALERTS")
        again = await fake_slack.wait_for_response()
        assert (again.response_type, again.text) == ("ephemeral", "⛔ U0ERIN already said it is not v142.")
        audit = [e for e in await bot.runtime.audit.latest(100) if e.action == "change.dismissed"]
        assert [e.actor for e in audit] == ["U0ERIN"]


async def test_declare_incident_declares_one_named_after_the_deploy_with_the_rollback_playbook(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    actions = FakeActions()
    async with watched_bot(database_url, tmp_path, fake_slack, clock, actions=actions) as (bot, target):
        value = button_value(await break_after_deploy(bot, target), "Declare incident")
        await bot.slack.block_action("changes.declare", value, user_id="U0CAROL", channel_id="C0ALERTS")
        await fake_slack.wait_for_response(lambda r: r.response_type == "in_channel")
        incident = await bot.runtime.incidents.get(1)
        assert incident is not None
        assert (incident.title, incident.playbook, incident.commander, incident.declared_in) == (
            "api bad after v142",
            "production-incident",
            "U0CAROL",
            "C0ALERTS",
        )
        assert incident.channel_id is not None
        assert actions.runs["rollback"] == 0  # declaring is not rolling back


async def test_a_button_with_damaged_data_says_so_and_changes_nothing(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    damaged = [
        ("changes.rollback", "{"),
        ("changes.declare", '{"c": 999}'),  # a change that does not exist
        ("changes.not_the_deploy", '{"c": "1"}'),
        ("changes.cancel_auto_rollback", '{"c": 0}'),
    ]
    async with watched_bot(database_url, tmp_path, fake_slack, clock) as (bot, _):
        mark = fake_slack.mark()
        for action_id, value in damaged:
            await bot.slack.block_action(action_id, value, user_id="U0CAROL", channel_id="C0ALERTS")
            told = await fake_slack.wait_for_response()
            assert (told.response_type, told.text) == ("ephemeral", "That button's data is damaged."), action_id
        assert fake_slack.calls_to("conversations.create", after=mark) == []
        assert [e.action for e in await bot.runtime.audit.latest(100) if e.action.startswith("change.")] == []
        assert await bot.runtime.incidents.open_incidents() == []
