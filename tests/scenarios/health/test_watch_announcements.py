"""Watching: state changes announced in channels.alerts after N consecutive results, once across replicas."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from bot.sandbox.fakes.targets import TargetServer
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.scheduler import build_scheduler
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock

INTERVAL = timedelta(seconds=30)


def watch_config(tmp_path: Path, targets: TargetServer) -> Path:
    return write_config(
        tmp_path / "config",
        f"""
        services:
          - name: checkout
            http: {{url: "{targets.set("/checkout")}"}}
            watch: true
            watch_interval: 30s
            watch_threshold: 2
          - name: api
            http: {{url: "{targets.set("/api")}"}}
    """,
    )


def alerts(bot: BotHarness) -> list[str]:
    return [c.args["text"] for c in bot.fake.calls_to("chat.postMessage") if c.args.get("channel") == "C0ALERTS"]


async def tick(bot: BotHarness) -> None:
    bot.clock.advance(INTERVAL)
    await bot.runtime.health.watch_tick()
    await bot.runtime.outbox.settle()  # alerts are posted by the outbox, right after the change commits


async def test_changes_are_announced_after_the_threshold_and_flapping_stays_quiet(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, targets: TargetServer
) -> None:
    config = watch_config(tmp_path, targets)
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
        await bot.runtime.health.watch_tick()
        await bot.runtime.health.watch_tick()  # not due again yet: no second request
        assert targets.hits["/checkout"] == 1 and targets.hits["/api"] == 0  # only watched services
        await tick(bot)
        assert alerts(bot) == []  # a newly watched service that is up: nothing to say

        targets.set("/checkout", status=503)
        await tick(bot)
        assert alerts(bot) == []  # one bad result is not a change yet
        await tick(bot)
        post = await bot.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0ALERTS")
        assert post.args["text"] == "checkout is down (was up)"
        assert "HTTP 503, expected 200" in blocks_text(post.args["blocks"])
        assert "health.declare_incident" in str(post.args["blocks"])
        await tick(bot)
        assert alerts(bot) == ["checkout is down (was up)"]

        for status in (200, 503, 200, 503, 200, 503):  # flapping
            targets.set("/checkout", status=status)
            await tick(bot)
        assert alerts(bot) == ["checkout is down (was up)"]

        targets.set("/checkout", status=200)
        await tick(bot)
        await tick(bot)
        assert alerts(bot) == ["checkout is down (was up)", "checkout is up (was down)"]

        entries = [e for e in await bot.runtime.audit.latest(20) if e.action == "health.state_changed"]
        assert [(e.details["from"], e.details["to"]) for e in entries] == [
            ("unknown", "up"),
            ("up", "down"),
            ("down", "up"),
        ]


async def test_a_late_or_early_tick_still_checks_a_service_due_every_tick(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, targets: TargetServer
) -> None:
    async with running_bot(
        database_url=sqlite_url, config_dir=watch_config(tmp_path, targets), fake=fake_slack, clock=clock
    ) as bot:
        await bot.runtime.health.watch_tick()
        for jitter in (0.4, -0.3, 0.2, -0.5, 0.9, 0.1, -0.2, 0.3):  # the scheduler's latency, in seconds
            clock.advance(INTERVAL + timedelta(seconds=jitter))
            await bot.runtime.health.watch_tick()
        assert targets.hits["/checkout"] == 9  # every tick, none skipped

        clock.advance(timedelta(seconds=10))  # a third of the way to the next due time: not due
        await bot.runtime.health.watch_tick()
        assert targets.hits["/checkout"] == 9


async def test_two_replicas_announce_each_change_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, targets: TargetServer
) -> None:
    config = watch_config(tmp_path, targets)
    async with AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock)
            )
            for _ in range(2)
        ]

        async def both_tick() -> None:
            clock.advance(INTERVAL)
            await asyncio.gather(*(r.runtime.health.watch_tick() for r in replicas))
            await asyncio.gather(*(r.runtime.outbox.settle() for r in replicas))

        targets.set("/checkout", status=500)
        for _ in range(3):
            await both_tick()
        targets.set("/checkout", status=200)
        for _ in range(3):
            await both_tick()
        assert targets.hits["/checkout"] == 12  # both replicas really checked every time
        assert alerts(replicas[0]) == ["checkout is down", "checkout is up (was down)"]


async def test_the_scheduler_ticks_only_when_something_is_watched(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack, targets: TargetServer
) -> None:
    async with running_bot(database_url=sqlite_url, config_dir=watch_config(tmp_path, targets), fake=fake_slack) as bot:
        job = build_scheduler(bot.runtime).get_job("health.watch")
        assert job is not None and job.trigger.interval == INTERVAL
    async with running_bot(
        database_url=sqlite_url, config_dir=write_config(tmp_path / "plain"), fake=fake_slack
    ) as bot:
        assert build_scheduler(bot.runtime).get_job("health.watch") is None
