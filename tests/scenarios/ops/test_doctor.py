"""`guardrail doctor` end to end: a real subprocess against the Slack stand-in, a database and targets."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.db import migrate
from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import MANIFEST_SCOPES, FakeSlack
from bot.sandbox.standin.workspace import BOT_USER_ID
from tests.support.bot import BOT_TOKEN, SIGNING_SECRET, write_config
from tests.support.paths import ROOT


@dataclass
class Result:
    code: int
    out: str
    err: str


async def doctor(env: dict[str, str], *args: str) -> Result:
    """`python -m bot doctor` as a subprocess (async: the stand-in keeps answering meanwhile)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_URL"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        *args,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def environment(fake: FakeSlack, database_url: str, config: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "SLACK_APP_TOKEN": "",
        "DATABASE_URL": database_url,
        "GUARDRAIL_CONFIG": str(config),
    }


async def test_doctor_lists_each_problem_with_its_fix_and_exits_1(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("deploys", channel_id="C0DEPLOYS", members=[BOT_USER_ID])
    fake_slack.add_channel("alerts", channel_id="C0ALERTS", members=["U0ALICE"])  # the bot was never invited
    fake_slack.token_scopes = [s for s in MANIFEST_SCOPES if s != "chat:write.public"]
    async with target_server() as targets:
        targets.set("/api"), targets.set("/checkout", status=503)
        config = write_config(
            tmp_path / "config",
            f"""
            services:
              - name: api
                http: {{url: "{targets.url}/api"}}
              - name: checkout
                http: {{url: "{targets.url}/checkout"}}
        """,
        )
        result = await doctor(environment(fake_slack, sqlite_url, config))  # never migrated
    assert result.code == 1, result
    lines = result.out.splitlines()
    assert "✓ Slack token: bot U0BOT in team T0TEST" in lines
    assert "✗ Slack scopes: missing chat:write.public" in lines
    assert "✓ Slack channel channels.deploys: member of #deploys" in lines
    assert "✗ Slack channel channels.alerts: the bot is not a member of #alerts (C0ALERTS)" in lines
    assert "    fix: in Slack: /invite @guardrail in #alerts" in lines
    assert any(line.startswith("✗ database:") and "is not migrated" in line for line in lines)
    assert "    fix: run `guardrail migrate`" in lines
    assert any(line.startswith("✓ service api: up") for line in lines)
    assert any(line.startswith("✗ service checkout: down") and "503" in line for line in lines)
    assert lines[-1] == "4 problems to fix"
    assert "Traceback" not in result.err


async def test_doctor_exits_0_when_everything_is_in_place(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    migrate.upgrade(sqlite_url)
    fake_slack.add_channel("deploys", channel_id="C0DEPLOYS", members=[BOT_USER_ID])
    fake_slack.add_channel("alerts", channel_id="C0ALERTS", members=[BOT_USER_ID])
    async with target_server() as targets:
        targets.set("/api")
        config = write_config(
            tmp_path / "config",
            f"""
            services:
              - name: api
                http: {{url: "{targets.url}/api"}}
        """,
        )
        result = await doctor(environment(fake_slack, sqlite_url, config))
    assert result.code == 0, result
    assert f"✓ Slack scopes: all {len(MANIFEST_SCOPES)} scopes of slack-manifest.yml" in result.out
    assert result.out.splitlines()[-1] == "all good"


async def test_doctor_says_the_token_is_wrong_and_exits_2_when_it_cannot_run(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    migrate.upgrade(sqlite_url)
    config = write_config(tmp_path / "config")
    wrong = await doctor({**environment(fake_slack, sqlite_url, config), "SLACK_BOT_TOKEN": "xoxb-revoked"})
    assert wrong.code == 1
    assert "✗ Slack token: auth.test answered `invalid_auth`" in wrong.out
    (tmp_path / "config" / "broken.yaml").write_text("timezone: Mars/Olympus\n")
    broken = await doctor(environment(fake_slack, sqlite_url, config))
    assert broken.code == 2
    assert "configuration" in broken.err and "Traceback" not in broken.err
