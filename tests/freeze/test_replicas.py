"""Two `guardrail serve` processes on one PostgreSQL: every announcement is posted exactly once."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bot.clock import SystemClock
from bot.config import load_config
from bot.db import migrate
from bot.db.engine import Database
from bot.services.freeze import FreezeService
from tests.standin.fake_slack import FakeSlack
from tests.support.bot import write_config

ROOT = Path(__file__).parent.parent.parent
BASE = """\
timezone: Europe/Berlin
channels: {deploys: C0DEPLOYS}
freeze:
  environments: [production, staging]
  reminders: [3s]
"""
WINDOWS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_bot(url: str, config: Path, fake: FakeSlack, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_URL"))}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": url, "GUARDRAIL_CONFIG": str(config),
                "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "secret",
                "SLACK_API_URL": fake.api_url})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def wait_healthy(port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"bot on port {port} did not start")


async def test_two_processes_announce_each_reminder_start_and_end_once(
        postgres_url: str, tmp_path: Path, fake_slack: FakeSlack) -> None:
    config = write_config(tmp_path / "config", base=BASE)
    migrate.upgrade(postgres_url)
    ports = [free_port(), free_port()]
    bots = [await start_bot(postgres_url, config, fake_slack, port) for port in ports]
    try:
        for port in ports:
            await wait_healthy(port)
        db = Database(postgres_url)
        freezes = FreezeService(db, SystemClock(), load_config(config, {}).config)
        now = datetime.now(UTC)
        for i in range(WINDOWS):
            start = now + timedelta(seconds=5)
            await freezes.create(starts_at=start, ends_at=start + timedelta(seconds=2), environment=None,
                                 reason=f"Window {i}", actor="U0CAROL")
        expected = {f"Freeze #{i} on production has ended" for i in range(1, WINDOWS + 1)}
        for text in expected:
            await fake_slack.wait_for("chat.postMessage", lambda c, t=text: c.args.get("text") == t,  # type: ignore[misc]
                                      timeout=20)
        # Nothing may follow: every window's last event is claimed, so a third replica ticking now
        # (as the two processes keep doing every second) finds nothing left to post.
        third = FreezeService(db, SystemClock(), load_config(config, {}).config)
        assert [await third.tick() for _ in range(5)] == [0] * 5  # nothing enqueued
        await db.dispose()
    finally:
        for process in bots:
            process.terminate()
        for process in bots:
            await asyncio.wait_for(process.wait(), timeout=15)

    posted = Counter(str(c.args.get("text")) for c in fake_slack.calls_to("chat.postMessage") if c.ok)
    assert set(posted.values()) == {1}, posted
    # The windows were created by a third service without Slack: the serve processes post those too.
    kinds = Counter(next((k for k in ("starts in", "has started", "has ended") if k in text), "created")
                    for text in posted)
    assert kinds == {"created": WINDOWS, "starts in": WINDOWS, "has started": WINDOWS, "has ended": WINDOWS}
