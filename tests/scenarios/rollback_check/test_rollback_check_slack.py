"""The rollback check in Slack: red posted in the deploys channel with what to fix; the "last checked"
line in `/health` and in the incident playbook. Real previews against the Heroku fake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.sandbox.fakes.heroku import ROLLBACK_PLAYBOOK, FakeHeroku
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.scheduler import build_scheduler
from tests.support.bot import running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.incidents import declare


async def test_red_is_posted_with_the_fix_and_green_only_updates_the_last_checked_line(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    heroku = FakeHeroku(token="the-new-token")
    heroku.add_app("acme-prod", releases=3)
    async with (
        heroku.serve() as heroku_url,
        running_bot(
            database_url=database_url,
            config_dir=write_config(tmp_path / "config", ROLLBACK_PLAYBOOK),
            fake=fake_slack,
            clock=clock,
            heroku_api_url=heroku_url,
            heroku_api_token="the-old-token",
        ) as bot,
    ):
        mark = bot.fake.mark()
        red = await bot.runtime.rollbacks.daily_tick()  # what the scheduler calls at rollback_check_at
        assert red is not None and not red.ok and red.posted
        post = await bot.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0DEPLOYS", after=mark)
        text = blocks_text(post.args["blocks"])
        assert "1 of 1 rollback paths cannot run" in text
        assert "Roll back the API" in text and "Heroku answered 401" in text
        assert "HEROKU_API_TOKEN is invalid or expired" in text

        mark = bot.fake.mark()
        await bot.slack.slash("/health")
        answer = await bot.fake.wait_for_response(after=mark)
        assert "Rollbacks last checked" in blocks_text(answer.body["blocks"])
        assert "1 of 1 paths cannot run" in blocks_text(answer.body["blocks"])

        heroku.token = "the-old-token"  # fixed: the token is valid again
        clock.advance(timedelta(days=1))
        mark = bot.fake.mark()
        green = await bot.runtime.rollbacks.daily_tick()
        assert green is not None and green.ok and green.posted is None
        channel = await declare(bot, "API returns 500s sev1")
        playbook = next(m for m in bot.fake.messages_in(channel) if "Playbook" in blocks_text(m.get("blocks") or []))
        assert "Rollbacks last checked" in blocks_text(playbook["blocks"])
        assert "the path can run" in blocks_text(playbook["blocks"])
        assert not any(
            c.args.get("channel") == "C0DEPLOYS" and "Rollback check" in str(c.args.get("text"))
            for c in bot.fake.calls_to("chat.postMessage", after=mark)
        )  # green is not posted
    assert heroku.writes() == []


async def test_the_daily_check_is_scheduled_at_the_configured_local_time(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    config = write_config(tmp_path / "config", ROLLBACK_PLAYBOOK + "    incidents: {rollback_check_at: '07:30'}\n")
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack) as bot:
        job = build_scheduler(bot.runtime).get_job("incidents.rollback_check")
        assert job is not None
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("7", "30")
        assert str(job.trigger.timezone) == "Europe/Berlin"  # the configured timezone
    off = write_config(tmp_path / "off", ROLLBACK_PLAYBOOK + "    incidents: {rollback_check_at: null}\n")
    async with running_bot(database_url=database_url, config_dir=off, fake=fake_slack) as bot:
        assert build_scheduler(bot.runtime).get_job("incidents.rollback_check") is None
