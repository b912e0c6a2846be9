"""Once the audit log is signed, a guardrail without GUARDRAIL_AUDIT_KEY records nothing: an unsigned
entry after signed ones is what a rewrite without the key looks like, and would read as tampering
forever. `serve` refuses to start; a replica that started before the log was signed refuses each
write, and says why, in Slack and over HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from bot.db import migrate
from bot.db.audit import AuditKey
from bot.db.engine import Database
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.audit import AuditLog
from tests.support.bot import API_TOKEN, SIGNING_SECRET, running_bot
from tests.support.clock import FakeClock
from tests.support.paths import ROOT

KEY = "k3y-for-the-audit-log-0123456789"


async def sign_the_log(url: str) -> None:
    """Another replica, with the key, writes one entry."""
    db = Database(url, audit_key=AuditKey(KEY.encode()))
    try:
        await AuditLog(db, FakeClock()).record(actor="system", action="note", subject="signed")
    finally:
        await db.dispose()


async def test_a_replica_without_the_key_refuses_writes_and_says_why(
    database_url: str, config_dir: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with running_bot(database_url=database_url, config_dir=config_dir, fake=fake_slack, clock=clock) as bot:
        await sign_the_log(database_url)

        await bot.slack.slash("/freeze", "for 1h Unsigned Demo", user_id="U0CAROL")
        told = await bot.fake.wait_for_response(lambda r: "GUARDRAIL_AUDIT_KEY" in str(r.text))
        assert told.response_type == "ephemeral"
        assert "/freeze for 1h Unsigned Demo" in str(told.text) and "an admin must set it" in str(told.text)
        async with httpx.AsyncClient(base_url=bot.url) as http:
            answer = await http.post(
                "/api/v1/deploys",
                headers={"Authorization": f"Bearer {API_TOKEN}"},
                json={"environment": "production", "service": "api", "version": "v1", "actor": "ci"},
            )
        assert answer.status_code == 503, answer.text
        assert "set GUARDRAIL_AUDIT_KEY" in answer.json()["reason"]
        assert (await bot.runtime.freezes.active_window("production")) is None  # nor was the freeze created

    db = Database(database_url, audit_key=AuditKey(KEY.encode()))
    try:
        result = await AuditLog(db, clock).verify()
    finally:
        await db.dispose()
    assert result.ok, result.reason


async def test_serve_refuses_to_start_without_the_key_once_the_log_is_signed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    migrate.upgrade(url)
    await sign_the_log(url)
    env = {k: v for k, v in os.environ.items() if k != "GUARDRAIL_AUDIT_KEY"}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": url,
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": "",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "GUARDRAIL_CONFIG": str(ROOT / "playbooks"),
            "APP_DATABASE_URL": "postgres://x@127.0.0.1/db",
            "DEPLOY_HOOK": "https://deploy.example.com",
            "PORT": "39517",
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--host",
        "127.0.0.1",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("guardrail serve started on a signed log without the key") from None
    lines = [line for line in err.decode().splitlines() if "GUARDRAIL_AUDIT_KEY" in line]
    assert proc.returncode == 2, err.decode()
    assert lines == [
        "guardrail: not serving: the audit log is signed with GUARDRAIL_AUDIT_KEY (entry #1 is) and "
        "this process has no key: set GUARDRAIL_AUDIT_KEY, the same on every replica"
    ], err.decode()
    assert "Traceback" not in err.decode()
