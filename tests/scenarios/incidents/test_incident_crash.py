"""`kill -9` of a real `guardrail serve` mid-step, then a restart: the step shows as interrupted —
in the thread, in the playbook message, in the audit log — and is never re-run without a confirmation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.db import migrate
from bot.db.engine import Database
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.audit import AuditLog
from tests.support.bot import BOT_TOKEN, SIGNING_SECRET, write_config
from tests.support.clock import FakeClock
from tests.support.fake_hook import FakeHook
from tests.support.incidents import RUN_ROLLBACK, SRE_GROUP, button_value, http_rollback_playbook, text_of
from tests.support.serve import ServeProcess, start_serve

LEASE_SECONDS = 2  # GUARDRAIL_STEP_LEASE_SECONDS for the subprocess: renewed every 1/3 s


async def test_a_step_whose_process_was_killed_shows_as_interrupted_after_a_restart_and_asks_before_running_again(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def slow_rollback(request: Request, body: Any) -> Response:
        reached.set()
        await release.wait()  # still running when the process is killed
        return JSONResponse({"ok": True})

    hook = FakeHook()
    hook.answer_with = slow_rollback
    fake_slack.usergroups["S0SRE"] = list(SRE_GROUP)
    migrate.upgrade(database_url)
    running: list[ServeProcess] = []
    async with hook.serve() as hook_url:
        config = write_config(tmp_path / "config", http_rollback_playbook(hook_url))
        env = {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
            "SLACK_APP_TOKEN": "",
            "GUARDRAIL_CONFIG": str(config),
            "GUARDRAIL_STEP_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        try:
            first = await start_serve(env, tmp_path / "serve.log")
            running.append(first)
            async with SlackEventsClient(first.url, SIGNING_SECRET, fake_slack) as slack:
                fresh = fake_slack.mark()
                await slack.slash("/incident", "declare API returns 500s sev1", user_id="U0CAROL")
                created = await fake_slack.wait_for("conversations.create", timeout=15, after=fresh)
                channel = str(created.response["channel"]["id"])
                await fake_slack.wait_for(
                    "chat.postMessage", lambda c: "Playbook" in text_of(c), timeout=15, after=fresh
                )
                run = button_value(fake_slack, channel, RUN_ROLLBACK)
                await slack.block_action(RUN_ROLLBACK, run, user_id="U0CAROL", channel_id=channel)
                await asyncio.wait_for(reached.wait(), timeout=15)
            await first.kill()  # kill -9 while the rollback is in flight

            after_crash = fake_slack.mark()
            second = await start_serve(env, tmp_path / "serve.log")
            running.append(second)
            told = await fake_slack.wait_for(
                "chat.postMessage", lambda c: "was *interrupted*" in text_of(c), timeout=30, after=after_crash
            )
            assert "Roll back last deploy" in text_of(told) and "may already have reached its target" in text_of(told)
            await fake_slack.wait_for(
                "chat.update", lambda c: "⚠️ interrupted" in blocks_text(c.args["blocks"]), timeout=10, after=after_crash
            )
            assert "⚠️ interrupted" in blocks_text(fake_slack.messages_in(channel)[1]["blocks"])

            db = Database(database_url)
            try:
                entries = await AuditLog(db, FakeClock()).latest(30)
            finally:
                await db.dispose()
            steps = [(e.action, e.details.get("attempt")) for e in entries if e.action.startswith("incident.step.")]
            assert steps == [("incident.step.started", 1), ("incident.step.interrupted", 1)]

            async with SlackEventsClient(second.url, SIGNING_SECRET, fake_slack) as slack:
                run = button_value(fake_slack, channel, RUN_ROLLBACK)
                await slack.block_action(RUN_ROLLBACK, run, user_id="U0DAVE", channel_id=channel)
                ask = await fake_slack.wait_for_response(lambda r: "was interrupted" in str(r.text), timeout=10)
            assert ask.response_type == "ephemeral"
            assert "may already have reached the target" in str(ask.text)
            button = ask.body["blocks"][-1]["elements"][0]
            assert button["text"]["text"] == "Run again anyway"
            assert "may already have reached the target" in button["confirm"]["text"]["text"]
            assert len(hook.requests) == 1  # the rollback reached the hook once, and was never re-sent
        except BaseException:
            print((tmp_path / "serve.log").read_text(errors="replace")[-5000:])  # shown on failure
            raise
        finally:
            release.set()
            for process in running:
                await process.stop()
