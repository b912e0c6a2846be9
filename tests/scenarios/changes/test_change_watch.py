"""The watch after a deploy, end to end: the real API, the real watch tick, the Slack stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.runtime import Overrides
from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot
from tests.support.changes import (
    THRESHOLD,
    WATCH_EVERY,
    break_after_deploy,
    button_value,
    buttons_of,
    change_config,
    deploy,
    text_of,
    watch_round,
    watched_bot,
)
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions


async def test_a_deploy_that_breaks_the_api_gets_a_roll_back_button_within_the_threshold(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with watched_bot(database_url, tmp_path, fake_slack, clock) as (bot, target):
        await deploy(bot, "v142", actor="ana")
        started = await fake_slack.wait_for("chat.postMessage", lambda c: "Watching api" in text_of(c))
        assert text_of(started) == "Watching api for 15 min after v142 by @ana"
        assert started.args["channel"] == "C0DEPLOYS"
        await watch_round(bot)  # healthy, like before the deploy
        clock.advance(WATCH_EVERY / 3)
        target.set("/api", status=500)  # the deploy broke it
        broke_at = clock.now()
        mark = fake_slack.mark()
        for _ in range(THRESHOLD + 2):
            await watch_round(bot)
            replies = [
                c
                for c in fake_slack.calls_to("chat.postMessage", after=mark)
                if c.args.get("thread_ts") == started.response["ts"]
            ]
            if replies:
                break
        assert replies, "no alarm in the watch's thread"
        assert clock.now() - broke_at <= THRESHOLD * WATCH_EVERY + WATCH_EVERY / 3
        alarm = replies[0]
        assert text_of(alarm).startswith("api went down")
        assert "after v142 (deployed by @ana). Roll back?" in text_of(alarm)
        assert buttons_of(alarm) == ["Roll back v142", "Declare incident", "Not the deploy"]
        alerts = await fake_slack.wait_for(
            "chat.postMessage", lambda c: c.args.get("channel") == "C0ALERTS", after=mark
        )
        assert buttons_of(alerts) == ["Roll back v142", "Declare incident", "Not the deploy"]
        edited = fake_slack.calls_to("chat.update", after=mark)
        assert edited and "went down" in text_of(edited[-1])
        actions = [e.action for e in await bot.runtime.audit.latest(20)]
        assert "change.recorded" in actions and "change.watch_alert" in actions


async def test_a_healthy_deploy_ends_looking_healthy_without_an_alarm(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with watched_bot(database_url, tmp_path, fake_slack, clock) as (bot, target):
        await deploy(bot, "v143", actor="ben")
        mark = fake_slack.mark()
        for _ in range(59):  # 15 min of 15 s rounds, less one
            await watch_round(bot)
        assert not [e for e in await bot.runtime.audit.latest(10) if e.action.startswith("change.watch_")]
        await watch_round(bot)
        final = await fake_slack.wait_for("chat.update", lambda c: "looks healthy" in text_of(c), after=mark)
        assert text_of(final) == "v143 looks healthy"
        assert [e.action for e in await bot.runtime.audit.latest(10)].count("change.watch_healthy") == 1
        posted = fake_slack.calls_to("chat.postMessage", after=mark)
        assert not [c for c in posted if "went down" in text_of(c)]
        assert target.hits["/api"] == 61  # the baseline at the change, then one probe a round


async def test_roll_back_pressed_on_two_replicas_rolls_back_once(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    actions = FakeActions()  # shared: counts runs across both processes
    async with target_server() as target:
        config = change_config(tmp_path, target.set("/api"))
        async with (
            running_bot(
                database_url=postgres_url,
                config_dir=config,
                fake=fake_slack,
                clock=clock,
                overrides=Overrides(build_action=actions),
            ) as one,
            running_bot(
                database_url=postgres_url,
                config_dir=config,
                fake=fake_slack,
                clock=clock,
                overrides=Overrides(build_action=actions),
            ) as two,
        ):
            alarm = await break_after_deploy(one, target)
            value = button_value(alarm, "Roll back v142")
            mark = fake_slack.mark()
            await asyncio.gather(
                one.slack.block_action("changes.rollback", value, user_id="U0CAROL", channel_id="C0ALERTS"),
                two.slack.block_action("changes.rollback", value, user_id="U0DAVE", channel_id="C0ALERTS"),
            )
            await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
            refused = await fake_slack.wait_for_response(lambda r: "already started" in str(r.text), after=mark)
            assert refused.response_type == "ephemeral"
            assert actions.runs["rollback"] == 1
            assert len(fake_slack.calls_to("conversations.create", after=mark)) == 1
            audit = await one.runtime.audit.latest(100)
            assert [e.action for e in audit].count("change.rollback_claimed") == 1
            assert [e.action for e in audit].count("incident.step.started") == 1
            assert (await one.runtime.audit.verify()).ok


async def test_only_responders_may_roll_back(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    actions = FakeActions()
    async with watched_bot(database_url, tmp_path, fake_slack, clock, actions=actions) as (bot, target):
        alarm = await break_after_deploy(bot, target)
        mark = fake_slack.mark()
        await bot.slack.block_action(
            "changes.rollback", button_value(alarm, "Roll back v142"), user_id="U0MALLORY", channel_id="C0ALERTS"
        )
        told = await fake_slack.wait_for_response(lambda r: "⛔" in str(r.text), after=mark)
        assert "Only responders" in str(told.text)
        assert actions.runs["rollback"] == 0
        assert not fake_slack.calls_to("conversations.create", after=mark)
        # The same button still works for a responder (so the refusal above was about the person).
        await bot.slack.block_action(
            "changes.rollback", button_value(alarm, "Roll back v142"), user_id="U0CAROL", channel_id="C0ALERTS"
        )
        await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
        assert actions.runs["rollback"] == 1
