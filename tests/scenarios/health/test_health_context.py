"""The answer shows the active freeze, the last deploys and open incidents (fakes of the ports)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.runtime import Overrides
from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.ports import DeployInfo, OpenIncident
from tests.support.bot import running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.health_fakes import FakeDeploys, FakeFreezes, FakeIncidents, freeze


async def test_freeze_deploys_and_incidents_in_the_answer(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with target_server() as targets:
        config = write_config(
            tmp_path / "config",
            f"""
            services:
              - name: api
                http: {{url: "{targets.set("/api")}"}}
              - name: checkout
                http: {{url: "{targets.set("/checkout", status=502)}"}}
        """,
        )
        now = clock.now()
        deploys = FakeDeploys(
            [
                DeployInfo("production", "api", "v1.4.2", "ci", now - timedelta(minutes=4)),
                DeployInfo("production", "checkout", "v88", "U0CAROL", now - timedelta(hours=3)),
                DeployInfo("staging", "api", "v1.5.0-rc1", "ci", now),
            ]
        )
        fakes = Overrides(
            freezes=FakeFreezes(freeze(now - timedelta(minutes=30))),
            deploys=deploys,
            incidents=FakeIncidents([OpenIncident(3, "Checkout failing", "sev1", "C0INC", now)]),
        )
        async with running_bot(
            database_url=sqlite_url, config_dir=config, fake=fake_slack, clock=clock, overrides=fakes
        ) as bot:
            ts = bot.fake.next_ts()
            await bot.slack.message("is prod down?", ts=ts)
            reply = await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts)
            text = blocks_text(reply.args["blocks"])
            assert reply.args["text"] == "1 of 2 down: checkout"
            assert "production is frozen" in text and "Demo Day" in text and "#7" in text
            assert "api v1.4.2 deployed 4 min ago by ci" in text
            assert "checkout v88 deployed 3 h ago by U0CAROL" in text
            assert "v1.5.0-rc1" not in text  # another environment
            assert "Open incident #3 (sev1): Checkout failing in <#C0INC>" in text

            # one service: only its own deploy
            bot.fake.reset()
            await bot.slack.slash("/health", "checkout")
            text = blocks_text((await bot.fake.wait_for_response()).body["blocks"])
            assert "checkout v88" in text and "api v1.4.2" not in text

            # a lookup that fails drops its own line and says so
            deploys.broken = True
            clock.advance(timedelta(seconds=11))  # the lookups are cached with the round (cache_ttl 10s)
            bot.fake.reset()
            await bot.slack.slash("/health")
            text = blocks_text((await bot.fake.wait_for_response()).body["blocks"])
            assert "deployed" not in text and "Could not read: deploys" in text
            assert "production is frozen" in text
