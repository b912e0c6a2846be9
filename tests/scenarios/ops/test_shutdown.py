"""SIGTERM to a real `guardrail serve` mid-step: no new steps start, the running one gets
`SHUTDOWN_TIMEOUT` to finish and record its result, and the process exits 0 within the bound."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.db import migrate
from bot.db.engine import Database
from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.audit import AuditLog
from tests.support.bot import BOT_TOKEN, SIGNING_SECRET, write_config
from tests.support.clock import FakeClock
from tests.support.fake_hook import FakeHook
from tests.support.incidents import RUN_ROLLBACK, SRE_GROUP, button_value, http_rollback_playbook, text_of
from tests.support.serve import ServeProcess, start_serve

EXIT_SLACK = 10.0  # seconds beyond the bound for an interpreter to wind down on a loaded machine


async def step_actions(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        entries = await AuditLog(db, FakeClock()).latest(30)
    finally:
        await db.dispose()
    return [e.action for e in entries if e.action.startswith("incident.step.")]


async def wait_for_line(process: ServeProcess, text: str, within: float = 15.0) -> None:
    """A line in the process's log (a file: nothing to await but its growth)."""
    deadline = time.monotonic() + within
    while text not in process.output():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged:\n{process.output()[-3000:]}")
        await asyncio.sleep(0.05)


async def start_step(
    tmp_path: Path, fake_slack: FakeSlack, database_url: str, hook_url: str, extra_env: dict[str, str]
) -> tuple[ServeProcess, str]:
    fake_slack.usergroups["S0SRE"] = list(SRE_GROUP)
    migrate.upgrade(database_url)
    config = write_config(tmp_path / "config", http_rollback_playbook(hook_url))
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_APP_TOKEN": "",
        "GUARDRAIL_CONFIG": str(config),
        **extra_env,
    }
    process = await start_serve(env, tmp_path / "serve.log")
    async with SlackEventsClient(process.url, SIGNING_SECRET, fake_slack) as slack:
        fresh = fake_slack.mark()
        await slack.slash("/incident", "declare API returns 500s sev1", user_id="U0CAROL")
        created = await fake_slack.wait_for("conversations.create", timeout=15, after=fresh)
        channel = str(created.response["channel"]["id"])
        await fake_slack.wait_for("chat.postMessage", lambda c: "Playbook" in text_of(c), timeout=15, after=fresh)
        run = button_value(fake_slack, channel, RUN_ROLLBACK)
        await slack.block_action(RUN_ROLLBACK, run, user_id="U0CAROL", channel_id=channel)
    return process, channel


async def test_sigterm_lets_a_running_step_finish_and_record_its_result(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def slow_rollback(request: Request, body: Any) -> Response:
        reached.set()
        await release.wait()
        return JSONResponse({"ok": True})

    hook = FakeHook()
    hook.answer_with = slow_rollback
    async with hook.serve() as hook_url:
        process, channel = await start_step(tmp_path, fake_slack, sqlite_url, hook_url, {"SHUTDOWN_TIMEOUT": "20"})
        try:
            await asyncio.wait_for(reached.wait(), timeout=15)
            process.proc.terminate()
            await wait_for_line(process, "Waiting for application shutdown")  # uvicorn: SIGTERM seen
            release.set()  # the rollback answers while the process is shutting down
            code = await asyncio.wait_for(process.proc.wait(), 20 + EXIT_SLACK)
        finally:
            release.set()
            await process.stop()
    assert code == 0, process.output()[-3000:]
    assert await step_actions(sqlite_url) == ["incident.step.started", "incident.step.succeeded"]
    assert "waiting up to 20s for 1 running playbook step" in process.output()
    finished = [m for m in fake_slack.messages_in(channel) if "Roll back last deploy" in str(m.get("text"))]
    assert finished, "the step's result was posted before the process exited"


async def test_sigterm_exits_0_within_the_bound_when_a_step_does_not_finish(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def stuck(request: Request, body: Any) -> Response:
        reached.set()
        await release.wait()
        return JSONResponse({"ok": True})

    hook = FakeHook()
    hook.answer_with = stuck
    async with hook.serve() as hook_url:
        process, _ = await start_step(
            tmp_path, fake_slack, sqlite_url, hook_url, {"SHUTDOWN_TIMEOUT": "2", "LOG_FORMAT": "json"}
        )
        try:
            await asyncio.wait_for(reached.wait(), timeout=15)
            signalled = time.monotonic()
            process.proc.terminate()
            code = await asyncio.wait_for(process.proc.wait(), 2 + EXIT_SLACK)
            took = time.monotonic() - signalled
        finally:
            release.set()
            await process.stop()
    assert code == 0, process.output()[-3000:]
    assert took < 2 + EXIT_SLACK
    lines = [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]
    left = [line for line in lines if "still running after 2s" in line["message"]]
    assert left and left[0]["level"] == "WARNING"  # LOG_FORMAT=json in a real process
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    # Not recorded as finished: the lease sweep of the next process shows it as interrupted.
    assert await step_actions(sqlite_url) == ["incident.step.started"]
