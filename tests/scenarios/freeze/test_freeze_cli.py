"""`guardrail freeze create|list|cancel`: the same rules, announcements and audit entries as `/freeze`,
from a terminal. The command runs in a subprocess against the running bot's database; the bot's
outbox tick posts the announcement."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import BotHarness, running_bot
from tests.support.paths import ROOT

Cli = Callable[..., Awaitable[tuple[int, str, str]]]
DEPLOYS = "C0DEPLOYS"


@pytest.fixture
async def bot(sqlite_url: str, config_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[BotHarness]:
    """Subprocesses are slow: SQLite is enough for the command's face; the API tests cover PostgreSQL."""
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as harness:
        harness.clock.set(datetime.now(UTC))  # the command reads the real clock
        yield harness


@pytest.fixture
def cli(bot: BotHarness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`guardrail freeze ARGS` in this process (in a thread: it runs its own event loop), against the bot's
    database: a subprocess per call costs seconds of imports."""
    for name in (
        "GUARDRAIL_AUDIT_KEY",
        "GUARDRAIL_API_TOKEN",
        "GUARDRAIL_API_TOKENS",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(bot.runtime.settings.guardrail_config)
    monkeypatch.setenv("DATABASE_URL", bot.runtime.settings.database_url)
    monkeypatch.setenv("GUARDRAIL_CONFIG", str(bot.runtime.settings.guardrail_config))

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = await asyncio.to_thread(main, ["freeze", *args])
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def guardrail(bot: BotHarness, *args: str, **env: str) -> tuple[int, str, str]:
    """`python -m bot freeze ARGS` in a subprocess: the installed command, as a script runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_URL"))}
    environ.update(
        {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": bot.runtime.settings.database_url,
            "GUARDRAIL_CONFIG": str(bot.runtime.settings.guardrail_config),
            **env,
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "freeze",
        *args,
        env=environ,
        cwd=str(bot.runtime.settings.guardrail_config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def announced(bot: BotHarness, text: str) -> str:
    """What the bot posted in #deploys once its outbox tick ran (as the scheduler runs it every few seconds)."""
    mark = bot.fake.mark()
    bot.clock.set(datetime.now(UTC))
    await bot.runtime.outbox.dispatch()
    call = await bot.fake.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == DEPLOYS and text in str(c.args.get("text")), after=mark
    )
    return blocks_text(call.args["blocks"])


async def test_create_list_and_cancel_are_announced_and_audited(
    bot: BotHarness, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = await guardrail(
        bot, "create", "--env", "production", "--for", "2h", "--reason", "Demo Day", "--actor", "alice"
    )
    assert code == 0, err
    assert out.startswith("created #1 production ") and "(2h) frozen now: Demo Day (by cli:alice)" in out
    assert "`" not in out and "<" not in out
    text = await announced(bot, "Freeze #1")
    assert "`cli:alice` froze `production`: *Demo Day*" in text
    entry = (await bot.runtime.audit.latest(1))[0]
    assert (entry.action, entry.actor, entry.subject) == ("freeze.created", "cli:alice", "freeze#1")
    assert (await bot.runtime.freezes.gate("production")).frozen

    monkeypatch.setenv("LOGNAME", "ci-runner")
    code, out, err = await cli(
        "create", "--env", "staging", "--start", "tomorrow 09:00", "--end", "12:00", "--reason", "Load test"
    )
    assert code == 0, err
    assert "#2 staging " in out and "09:00 CET" in out and "12:00 CET (3h) upcoming" in out
    assert "(by cli:ci-runner)" in out  # the OS user without --actor

    code, out, _ = await cli("list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith("#1 production") and "frozen now" in lines[0]
    code, out, _ = await cli("list", "--env", "staging", "--json")
    listed = json.loads(out)["freezes"]
    assert code == 0 and [(w["id"], w["state"], w["created_by"]) for w in listed] == [(2, "upcoming", "cli:ci-runner")]

    code, out, err = await cli("cancel", "#1", "--actor", "bob")
    assert code == 0, err
    assert out.startswith("cancelled #1 production") and "cancelled by cli:bob" in out
    await announced(bot, "Freeze #1 on production was cancelled")
    entry = (await bot.runtime.audit.latest(1))[0]
    assert (entry.action, entry.actor) == ("freeze.cancelled", "cli:bob")

    code, _, err = await cli("cancel", "1", "--actor", "bob")
    assert (code, err) == (2, "guardrail: Window #1 was already cancelled.\n")
    code, out, _ = await cli("list", "--json")
    assert [w["id"] for w in json.loads(out)["freezes"]] == [2]


BAD_INPUT = [
    (("create", "--for", "soon", "--reason", "x"), "soon (after for) is not a duration"),
    (("create", "--env", "moon", "--for", "1h", "--reason", "x"), "Unknown environment moon: use one of production"),
    (
        ("create", "--start", "2026-01-01 10:00", "--end", "2026-01-01 09:00", "--reason", "x"),
        "The window ends before it starts.",
    ),
    (("create", "--for", "8d", "--reason", "x"), "longer than freeze.max_duration (7d)"),
    (("create", "--start", "noon", "--for", "1h", "--reason", "x"), "I did not understand noon"),
    (("create", "--start", "14:00 on staging", "--for", "1h", "--reason", "x"), "write only the time"),
    (("create", "--for", "1h", "--end", "18:00", "--reason", "x"), "say how long: --for 2h, or --end"),
    (("create", "--for", "1h", "--reason", "x", "--actor", "a b"), "--actor 'a b': 1-60 characters"),
    (("create", "--for", "1h"), "the following arguments are required: --reason"),
    (("cancel", "42", "--actor", "alice"), "There is no freeze window #42."),
    (("cancel", "#²"), "is not a freeze window number"),
    (("list", "--env", "moon"), "unknown environment 'moon'"),
]


async def test_bad_input_is_one_line_and_exit_2(bot: BotHarness, cli: Cli) -> None:
    for args, message in BAD_INPUT:
        code, out, err = await cli(*args)
        assert code == 2, (args, out, err)
        assert message in err and "Traceback" not in err and "`" not in err, (args, err)
        if "usage:" not in err:  # argparse's own errors come with the usage line
            assert len(err.strip().splitlines()) == 1, (args, err)
    assert await bot.runtime.freezes.upcoming() == []
