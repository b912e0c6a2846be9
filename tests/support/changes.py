"""Helpers for change-watch tests: a configuration with a watched service and a rollback step,
deploys through the real API, and watch rounds on the injected clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx

from bot.runtime import Overrides
from bot.sandbox.fakes.targets import TargetServer, target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Call
from bot.services.changes import WatchEvents
from tests.support.bot import API_TOKEN, BotHarness, running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions

WATCH_EVERY = timedelta(seconds=15)
THRESHOLD = 2

CONFIG = """\
services:
  - name: api
    http: {{url: "{url}"}}
    timeout: 1s
changes:
  watch_for: 15m
  watch_every: 15s
  watch_threshold: 2
{extra}
playbooks:
  - name: production-incident
    steps:
      - id: rollback
        label: Roll back last deploy
        changes_production: true
        rollback: true
        action: {{http: {{url: "https://deploy.example.com/rollback", json: {{service: api}}}}}}
      - id: verify
        label: Verify
        action: {{http: {{method: GET, url: "https://deploy.example.com/verify"}}}}
"""


def change_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    return write_config(tmp_path / "config", CONFIG.format(url=url, extra=extra))


@asynccontextmanager
async def watched_bot(
    database_url: str,
    tmp_path: Path,
    fake_slack: FakeSlack,
    clock: FakeClock,
    *,
    extra: str = "",
    actions: FakeActions | None = None,
) -> AsyncIterator[tuple[BotHarness, TargetServer]]:
    """One bot watching a target's healthy `/api` (`extra` goes under `changes:`); with `actions`,
    the playbook's steps run on those fakes. The bot, and the target to break."""
    async with target_server() as target:
        config = change_config(tmp_path, target.set("/api"), extra)
        overrides = Overrides(build_action=actions) if actions is not None else None
        async with running_bot(
            database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, overrides=overrides
        ) as bot:
            yield bot, target


async def deploy(bot: BotHarness, version: str = "v142", *, service: str = "api", actor: str = "ana") -> int:
    """`POST /api/v1/deploys` as CI does; the deploy's id."""
    async with httpx.AsyncClient(base_url=bot.url) as http:
        answer = await http.post(
            "/api/v1/deploys",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            json={"environment": "production", "service": service, "version": version, "actor": actor},
        )
    assert answer.status_code == 201, answer.text
    await bot.runtime.changes.settle()  # the baseline probe taken at the change
    await bot.runtime.outbox.settle()  # the watch message
    return int(answer.json()["id"])


async def watch_round(bot: BotHarness) -> WatchEvents:
    """The next round: the injected clock moves one watch_every on, then the scheduler's tick runs."""
    bot.clock.advance(WATCH_EVERY)
    events = await bot.runtime.changes.watch_tick()
    await bot.runtime.outbox.settle()
    return events


def text_of(call: Call) -> str:
    return str(call.args.get("text", ""))


def buttons_of(call: Call) -> list[str]:
    blocks = call.args.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [str(e["text"]["text"]) for b in blocks if b.get("type") == "actions" for e in b["elements"]]


def button_value(call: Call, label: str) -> str:
    blocks = call.args.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return next(
        str(e["value"])
        for b in blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if str(e["text"]["text"]) == label
    )


async def break_after_deploy(bot: BotHarness, target: TargetServer, version: str = "v142") -> Call:
    """Deploy, let the api go down, run rounds until the alarm; the alerts-channel post."""
    mark = bot.fake.mark()
    await deploy(bot, version, actor="ana")
    await watch_round(bot)
    target.set("/api", status=500)
    for _ in range(THRESHOLD):
        await watch_round(bot)
    return await bot.fake.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "C0ALERTS", after=mark)
