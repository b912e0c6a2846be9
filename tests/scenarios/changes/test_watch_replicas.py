"""Watches across replicas: one replica drives a watch (lease), another takes over when it dies,
the alarm is said once, and it reaches the alerts channel even when Slack was away."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot
from tests.support.changes import THRESHOLD, change_config, deploy, text_of, watch_round, watched_bot
from tests.support.clock import FakeClock


async def test_two_replicas_ticking_probe_once_a_round_and_raise_one_alarm(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with target_server() as target:
        config = change_config(tmp_path, target.set("/api"))
        async with (
            running_bot(database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock) as one,
            running_bot(database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock) as two,
        ):
            await deploy(one, "v142")
            mark = fake_slack.mark()
            target.hits.clear()
            for n in range(6):
                if n == 1:
                    target.set("/api", status=500)
                clock.advance(one.runtime.changes.watch_every)
                await asyncio.gather(one.runtime.changes.watch_tick(), two.runtime.changes.watch_tick())
                # one probe a round, not one per replica; none once the alarm (round 3) ended the watch
                assert target.hits["/api"] == min(n + 1, 1 + THRESHOLD)
            await one.runtime.outbox.settle()
            await two.runtime.outbox.settle()
            alarms = [c for c in fake_slack.calls_to("chat.postMessage", after=mark) if "went down" in text_of(c)]
            assert sorted(c.args["channel"] for c in alarms) == ["C0ALERTS", "C0DEPLOYS"]  # alerts + thread
            audit = await one.runtime.audit.latest(50)
            assert [e.action for e in audit].count("change.watch_alert") == 1


async def test_a_replica_that_stops_ticking_hands_its_watch_over(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with target_server() as target:
        config = change_config(tmp_path, target.set("/api"))
        async with running_bot(database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock) as two:
            async with running_bot(database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock) as one:
                await deploy(one, "v142")
                await watch_round(one)  # `one` holds the watch; baseline: up
            target.set("/api", status=500)  # `one` is gone; only `two` ticks
            mark = fake_slack.mark()
            for _ in range(3):  # its lease (3 rounds) runs out
                await watch_round(two)
            assert not fake_slack.calls_to("chat.postMessage", after=mark)
            for _ in range(THRESHOLD):
                await watch_round(two)
            await fake_slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "C0ALERTS", after=mark)


async def test_the_alarm_reaches_the_alerts_channel_after_slack_was_away(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with watched_bot(database_url, tmp_path, fake_slack, clock) as (bot, target):
        await deploy(bot, "v142")
        await watch_round(bot)
        target.set("/api", status=500)
        fake_slack.fail("chat.postMessage", "internal_error", times=2, status=500)  # the alarm's two posts
        mark = fake_slack.mark()
        for _ in range(THRESHOLD):
            await watch_round(bot)
        assert not [c for c in fake_slack.calls_to("chat.postMessage", after=mark) if c.ok]
        for _ in range(3):  # the scheduler's outbox ticks, Slack back
            clock.advance(timedelta(minutes=1))
            await bot.runtime.outbox.dispatch()
        posted = [
            c
            for c in fake_slack.calls_to("chat.postMessage", after=mark)
            if c.ok and c.args.get("channel") == "C0ALERTS"
        ]
        assert len(posted) == 1 and "api went down" in text_of(posted[0])
