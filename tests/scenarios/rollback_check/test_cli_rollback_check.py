"""`guardrail rollback-check`: exit 0 green, 1 red (posted in the deploys channel), 2 cannot run."""

from __future__ import annotations

from pathlib import Path

from bot.db import migrate
from bot.sandbox.fakes.heroku import ROLLBACK_PLAYBOOK, TOKEN, FakeHeroku
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import write_config
from tests.support.cli import run_awaited


async def rollback_check(env: dict[str, str]) -> tuple[int, str, str]:
    return await run_awaited("rollback-check", env=env)


def environment(tmp_path: Path, heroku_url: str, token: str, fake_slack: FakeSlack | None = None) -> dict[str, str]:
    config = write_config(tmp_path / "config", ROLLBACK_PLAYBOOK)
    database = f"sqlite:///{tmp_path / 'guardrail.db'}"
    migrate.upgrade(database)
    env = {
        "GUARDRAIL_CONFIG": str(config),
        "DATABASE_URL": database,
        "HEROKU_API_URL": heroku_url,
        "HEROKU_API_TOKEN": token,
    }
    if fake_slack is not None:
        env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": fake_slack.api_url})
    return env


async def test_a_broken_heroku_token_posts_red_in_the_deploys_channel_and_exits_1(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    heroku = FakeHeroku()
    heroku.add_app("acme-prod", releases=3)
    async with heroku.serve() as url:
        code, out, err = await rollback_check(environment(tmp_path, url, "expired-token", fake_slack))

    assert code == 1, (out, err)
    assert out.splitlines()[0] == "1 of 1 rollback paths cannot run"
    assert "RED  production-incident/rollback-api: Cannot preview the rollback of acme-prod: Heroku answered 401" in out
    assert "fix: HEROKU_API_TOKEN is invalid or expired" in out
    assert "posted in C0DEPLOYS" in err
    [post] = fake_slack.calls_to("chat.postMessage")
    assert post.args["channel"] == "C0DEPLOYS"
    assert post.args["text"] == "Rollback check: 1 of 1 rollback paths cannot run"
    text = blocks_text(post.args["blocks"])
    assert "Roll back the API" in text and "Heroku answered 401" in text and "heroku authorizations:create" in text
    assert heroku.writes() == []


async def test_green_exits_0_and_posts_nothing(tmp_path: Path, fake_slack: FakeSlack) -> None:
    heroku = FakeHeroku()
    heroku.add_app("acme-prod", releases=3)
    async with heroku.serve() as url:
        code, out, err = await rollback_check(environment(tmp_path, url, TOKEN, fake_slack))
    assert code == 0, (out, err)
    assert out.splitlines()[0] == "The rollback path can run"
    assert fake_slack.calls_to("chat.postMessage") == []
    assert heroku.writes() == []


async def test_an_unmigrated_database_cannot_run_and_exits_2(tmp_path: Path) -> None:
    env = environment(tmp_path, "http://127.0.0.1:9", TOKEN)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    code, _, err = await rollback_check(env)
    assert code == 2
    assert "is not migrated" in err and "guardrail migrate" in err
