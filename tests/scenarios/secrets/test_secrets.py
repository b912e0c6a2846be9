"""No secret in any log line, audit entry, Slack message, `/readyz` or `/audit` answer.

The bot runs with GUARDRAIL_AUDIT_KEY set, which must never be shown either. A second run connects
over Socket Mode, whose WebSocket URL carries a ticket (a credential), through a failed handshake.

One run of the real bot: a playbook `http` step (preview, then run) and health checks (a question
in Slack, and the watcher), whose URLs, headers, bodies and answers carry known secret strings.
Every output channel is captured and searched for them: every log record at DEBUG (formatted with
its traceback), the audit table as stored and as exported, every Web API call and response_url
post the Slack stand-in received, `/readyz` and the `/audit` answer.

The secrets are short on purpose: strings of 20 or more opaque characters are masked whatever
their key, and the test must prove that the *key names* and *header rule* protect the short ones.
"""

from __future__ import annotations

import io
import json
import logging
import textwrap
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bot.actions import build_action
from bot.cli import _export
from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import API_TOKEN, BOT_TOKEN, SIGNING_SECRET, running_bot
from tests.support.clock import FakeClock
from tests.support.fake_hook import FakeHook
from tests.support.incidents import declare, incident_bot, incident_config, text_of
from tests.support.ports import free_port

SECRETS = {
    "action userinfo": "Ua1-usr",
    "action password": "Ua2-pw",
    "action query": "Ua3-qry",
    "action bearer": "Ua4-brr",
    "action custom header": "Ua5-hdr",
    "action body pass": "Ua6-bdy",
    "action body pwd": "Ua7-pwd",
    "action body session": "Ua8-ssn",
    "check userinfo": "Uc1-usr",
    "check password": "Uc2-pw",
    "check query": "Uc3-qry",
    "check header": "Uc4-hdr",
    "check answer": "Uc5-ans",
    "down check password": "Uc6-pw",
    "down check query": "Uc7-sig",
}
AUDIT_KEY = "Uk1-audit-key-16c"  # GUARDRAIL_AUDIT_KEY's minimum is 16 characters; short of the 20 masked anyway


def _playbook(hook_url: str) -> str:
    s = SECRETS
    target = hook_url.replace("http://", f"http://{s['action userinfo']}:{s['action password']}@")
    return f"""\
        playbooks:
          - name: production-incident
            steps:
              - id: rollback
                label: Roll back last deploy
                action:
                  http:
                    url: "{target}/rollback?access_token={s["action query"]}&service=api"
                    headers:
                      Authorization: "Bearer {s["action bearer"]}"
                      X-Deploy-Tenant: "{s["action custom header"]}"
                      Content-Type: application/json
                    json: {{service: api, pass: "{s["action body pass"]}",
                            db: {{pwd: "{s["action body pwd"]}", Session: "{s["action body session"]}"}}}}
        """


def _services(targets_url: str) -> str:
    s = SECRETS
    up = targets_url.replace("http://", f"http://{s['check userinfo']}:{s['check password']}@")
    refused = f"http://monitor:{s['down check password']}@127.0.0.1:{free_port()}"
    return f"""\
        services:
          - name: api
            http:
              url: "{up}/up?token={s["check query"]}"
              headers: {{X-Auth-Key: "{s["check header"]}", X-Tenant: "{s["check header"]}"}}
            watch: true
            watch_interval: 30s
            watch_threshold: 1
          - name: checkout
            http:
              url: "{up}/broken?signature={s["check query"]}"
              json_field: status
              json_equals: ok
            watch: true
            watch_interval: 30s
            watch_threshold: 1
          - name: jobs
            http: {{url: "{refused}/health?sig={s["down check query"]}"}}
            watch: true
            watch_interval: 30s
            watch_threshold: 1
        """


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    # What a DEBUG run of `guardrail serve` would log (SQLAlchemy's echo stays off, as in production).
    for name in ("httpx", "httpcore", "slack_bolt", "slack_sdk", "bot"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


async def test_no_secret_reaches_logs_audit_slack_readyz_or_audit_command(
    database_url: str,
    tmp_path: Path,
    fake_slack: FakeSlack,
    clock: FakeClock,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    hook = FakeHook()
    async with hook.serve() as hook_url, target_server() as targets:
        # The health target answers with a secret in its body; the hook echoes what it received.
        targets.set("/up", json={"status": "ok", "password": SECRETS["check answer"]})
        targets.set("/broken", json={"status": "degraded", "session": SECRETS["check answer"]})
        yaml = textwrap.dedent(_playbook(hook_url)) + textwrap.dedent(_services(targets.url))
        config = incident_config(tmp_path, yaml)
        async with incident_bot(
            database_url=database_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            guardrail_audit_key=AUDIT_KEY,
            build_action=build_action,
        ) as ibot:
            bot = ibot.bot
            assert bot.runtime.audit.signed
            channel = await declare(bot)
            await bot.slack.block_action("incident.step.preview:rollback", user_id="U0CAROL", channel_id=channel)
            await bot.fake.wait_for_response(lambda r: "Preview of Roll back last deploy" in str(r.text))
            fresh = bot.fake.mark()
            await bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=channel)
            await bot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)

            question = bot.fake.next_ts()
            await bot.slack.message("are we down?", ts=question)
            await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == question)
            await bot.runtime.health.watch_tick()
            clock.advance(timedelta(seconds=31))
            await bot.runtime.health.watch_tick()
            await bot.fake.wait_for(
                "chat.postMessage", lambda c: c.args.get("channel") == "C0ALERTS" and "jobs" in text_of(c)
            )

            async with httpx.AsyncClient() as client:
                readyz = (await client.get(f"{bot.url}/readyz")).text
            await bot.slack.slash("/audit", "40", user_id="U0CAROL")
            audit_answer = await bot.fake.wait_for_response(lambda r: "audit entries" in str(r.text))

            exported = io.StringIO()
            await _export(bot.runtime, "jsonl", None, exported)
            async with bot.runtime.db.reader() as session:
                rows = (await session.execute(text("SELECT * FROM audit_entry"))).all()
            slack = json.dumps([c.args for c in bot.fake.calls], default=str) + json.dumps(
                [r.body for r in bot.fake.responses], default=str
            )

    # The secrets did go where they belong: the calls were made with them.
    [sent] = hook.requests
    assert sent.body["pass"] == SECRETS["action body pass"]
    assert SECRETS["action query"] in sent.query
    assert sent.headers["x-deploy-tenant"] == SECRETS["action custom header"]
    assert targets.hits["/up"] >= 2 and targets.hits["/broken"] >= 2

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = "\n".join(formatter.format(r) for r in every_log_record.records)
    assert "HTTP Request: POST http://127.0.0.1" in logs  # httpx's line is kept, with a safe URL
    channels = {
        "logs": logs,
        "audit table": repr(rows),
        "audit export": exported.getvalue(),
        "slack": slack,
        "/readyz": readyz,
        "/audit": json.dumps(audit_answer.body),
    }
    assert "rollback" in channels["audit export"] and "jobs" in channels["slack"]
    leaks = [
        f"{what} ({secret}) in {where}"
        for where, output in channels.items()
        for what, secret in [
            *SECRETS.items(),
            ("bot token", BOT_TOKEN),
            ("signing secret", SIGNING_SECRET),
            ("API token", API_TOKEN),
            ("audit key", AUDIT_KEY),
        ]
        if secret in output
    ]
    leaking_lines = [line[:300] for line in logs.splitlines() if any(s in line for s in SECRETS.values())]
    assert not leaks, "\n".join([*leaks, "log lines:", *leaking_lines[:10]])


RAISED = {"userinfo": "Ux1-usr", "password": "Ux2-pw", "query token": "Ux3-tok"}


class RaisingAction:
    """A step whose action lets an httpx error escape: its text carries the whole URL, token and all."""

    def __call__(self, action: object) -> RaisingAction:
        return self

    def describe(self) -> str:
        return "POST https://deploy.example.com/rollback"

    async def preview(self, ctx: object) -> None:
        raise AssertionError("not previewed here")

    async def run(self, ctx: object) -> None:
        r = RAISED
        url = f"https://{r['userinfo']}:{r['password']}@deploy.example.com/rollback?access_token={r['query token']}"
        httpx.Response(503, request=httpx.Request("POST", url)).raise_for_status()


async def test_an_exception_an_action_raises_reaches_no_log_audit_entry_or_slack_message_unmasked(
    database_url: str,
    tmp_path: Path,
    fake_slack: FakeSlack,
    clock: FakeClock,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    async with incident_bot(
        database_url=database_url,
        config_dir=incident_config(tmp_path),
        fake=fake_slack,
        clock=clock,
        build_action=RaisingAction(),  # type: ignore[arg-type]
    ) as ibot:
        bot = ibot.bot
        channel = await declare(bot)
        mark = bot.fake.mark()
        await bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=channel)
        failed = await bot.fake.wait_for("chat.postMessage", lambda c: "* failed after" in text_of(c), after=mark)
        async with bot.runtime.db.reader() as session:
            rows = (await session.execute(text("SELECT * FROM audit_entry"))).all()
            steps = (await session.execute(text("SELECT * FROM incident_step"))).all()
        slack = json.dumps([c.args for c in bot.fake.calls], default=str)

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = "\n".join(formatter.format(r) for r in every_log_record.records)
    channels = {"logs": logs, "audit table": repr(rows), "step table": repr(steps), "slack": slack}
    leaks = [
        f"{what} ({secret}) in {where}"
        for where, output in channels.items()
        for what, secret in RAISED.items()
        if secret in output
    ]
    assert not leaks, leaks
    # What failed, and where, is still said: the error type, the host and path, the masked token.
    assert "step rollback of incident 1 raised HTTPStatusError" in logs
    assert "HTTPStatusError" in text_of(failed) and "deploy.example.com/rollback?access_token=***" in text_of(failed)


async def test_the_socket_mode_ticket_never_reaches_the_logs(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack, every_log_record: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("aiohttp").setLevel(logging.DEBUG)
    fake_slack.socket_mode.refuse = 1  # the first handshake fails: the client logs the error, URL and all
    async with running_bot(
        database_url=sqlite_url,
        config_dir=config_dir,
        fake=fake_slack,
        slack_app_token="xapp-1-test",
        slack_signing_secret=None,
    ):
        # the client retries after its ping interval (10 s)
        ack = await fake_slack.socket_mode.send(
            "slash_commands",
            {
                "command": "/audit",
                "text": "oops",
                "user_id": "U0ALICE",
                "channel_id": "C0GENERAL",
                "team_id": "T0TEST",
                "response_url": fake_slack.response_url("socket"),
                "trigger_id": "1.2.3",
            },
            timeout=30,
        )
    assert "envelope_id" in ack
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = [formatter.format(r) for r in every_log_record.records]
    assert any("Failed to connect" in line and "/socket-mode" in line for line in logs)  # the line is kept
    assert any("apps.connections.open" in line for line in logs)
    ticket = fake_slack.socket_mode.ticket
    assert [line[:300] for line in logs if ticket in line] == []
