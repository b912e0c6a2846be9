"""`guardrail serve` as a process: it starts without reaching Slack, and Socket Mode keeps HTTP up."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bot.db import migrate
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import SIGNING_SECRET, running_bot

ROOT = Path(__file__).parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve_process(env: dict[str, str]) -> AsyncIterator[str]:
    port = _free_port()
    full = {**os.environ, "PYTHONPATH": str(ROOT), "PORT": str(port), **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1",
                                                env=full, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(200):  # bounded: at most ~20 s for the interpreter to start
                if proc.returncode is not None:
                    raise AssertionError(f"serve exited: {(await proc.stderr.read()).decode()}")  # type: ignore[union-attr]
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("guardrail serve did not answer /healthz within 20 s")
        yield url
    finally:
        proc.terminate()
        await proc.wait()


async def test_serve_starts_when_slack_is_unreachable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    migrate.upgrade(url)
    env = {"DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": f"http://127.0.0.1:{_free_port()}/api/", "SLACK_APP_TOKEN": "",
           "GUARDRAIL_CONFIG": str(ROOT / "playbooks"), "APP_DATABASE_URL": "postgres://x@127.0.0.1/db",
           "DEPLOY_HOOK": "https://deploy.example.com"}
    async with serve_process(env) as base, httpx.AsyncClient(base_url=base) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200


async def test_socket_mode_serves_slack_over_a_websocket_and_http_keeps_serving(
        sqlite_url: str, config_dir: Path, fake_slack: FakeSlack) -> None:
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack,
                           slack_app_token="xapp-1-test", slack_signing_secret=None) as bot:
        ack = await fake_slack.socket_mode.send("slash_commands", {
            "command": "/audit", "text": "oops", "user_id": "U0ALICE", "channel_id": "C0GENERAL",
            "team_id": "T0TEST", "response_url": fake_slack.response_url("socket"), "trigger_id": "1.2.3"})
        reply = await fake_slack.wait_for_response(lambda r: r.name == "socket")
        async with httpx.AsyncClient(base_url=bot.url) as http:
            alive = await http.get("/healthz")
            events = await http.post("/slack/events", content=b"{}")
    assert "envelope_id" in ack
    assert "Usage: `/audit [n]`" in reply.body["text"]
    assert alive.status_code == 200
    assert events.status_code == 401  # no signing secret in Socket Mode: HTTP events are refused
