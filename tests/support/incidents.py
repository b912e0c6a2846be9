"""Helpers for incident tests: a bot with a playbook and fake actions, declaring, clicking, waiting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Call
from bot.services.ports import ActiveFreeze
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions

PLAYBOOK = """\
playbooks:
  - name: production-incident
    steps:
      - id: rollback
        label: Roll back last deploy
        changes_production: true
        action: {http: {url: "https://deploy.example.com/rollback", json: {service: api}}}
      - id: disable-worker
        label: Disable worker
        changes_production: true
        action: {http: {url: "https://deploy.example.com/disable-worker"}}
        undo: {http: {url: "https://deploy.example.com/enable-worker"}}
      - id: verify
        label: Verify database and queue
        description: Checks the database and the jobs queue
        action: {http: {method: GET, url: "https://deploy.example.com/verify"}}
      - id: replay
        label: Replay failed jobs
        after: [verify]
        action: {http: {url: "https://deploy.example.com/replay"}}
  - name: small
    steps:
      - id: verify
        label: Verify only
        action: {http: {method: GET, url: "https://deploy.example.com/verify"}}
"""

SRE_GROUP = ["U0ERIN", "U0FRANK"]


class FakeFreezes:
    """A `FreezeLookup` whose answer the test sets."""

    def __init__(self) -> None:
        self.active: ActiveFreeze | None = None
        self.asked: list[str] = []

    async def active_window(self, environment: str, *, service: str | None = None) -> ActiveFreeze | None:
        self.asked.append(environment)
        return self.active if self.active and self.active.environment == environment else None

    def freeze(self, freeze_id: int, now: datetime) -> ActiveFreeze:
        self.active = ActiveFreeze(id=freeze_id, environment="production", reason="Black Friday",
                                   starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=5),
                                   created_by="U0CAROL")
        return self.active


class FakeFreezer:
    """An `IncidentFreezer` over a FakeFreezes: starting a freeze makes the lookup report it."""

    def __init__(self, freezes: FakeFreezes, now: Callable[[], datetime]) -> None:
        self._freezes = freezes
        self._now = now
        self.started: list[tuple[int, str, str]] = []
        self.lifted: list[tuple[int, str]] = []

    async def freeze_for_incident(self, *, environment: str, incident_id: int, reason: str,
                                  actor: str) -> ActiveFreeze:
        freeze = ActiveFreeze(id=100 + incident_id, environment=environment, reason=reason,
                              starts_at=self._now(), ends_at=self._now() + timedelta(days=7), created_by=actor)
        self._freezes.active = freeze
        self.started.append((incident_id, environment, reason))
        return freeze

    async def lift(self, freeze_id: int, *, actor: str) -> bool:
        self.lifted.append((freeze_id, actor))
        if self._freezes.active is None or self._freezes.active.id != freeze_id:
            return False
        self._freezes.active = None
        return True


@dataclass
class IncidentBot:
    bot: BotHarness
    actions: FakeActions
    freezes: FakeFreezes

    @property
    def fake(self) -> FakeSlack:
        return self.bot.fake


def incident_config(tmp_path: Path, extra: str = PLAYBOOK) -> Path:
    return write_config(tmp_path / "config", extra)


def install(bot: BotHarness, actions: FakeActions, freezes: FakeFreezes) -> None:
    bot.runtime.incidents.steps.build_action = actions
    bot.runtime.incidents.steps.freezes = freezes
    bot.fake.usergroups.setdefault("S0SRE", list(SRE_GROUP))


@asynccontextmanager
async def incident_bot(*, database_url: str, config_dir: Path, fake: FakeSlack, clock: FakeClock,
                       actions: FakeActions | None = None, **settings: object) -> AsyncIterator[IncidentBot]:
    actions = actions or FakeActions()
    freezes = FakeFreezes()
    async with running_bot(database_url=database_url, config_dir=config_dir, fake=fake, clock=clock,
                           **settings) as bot:
        install(bot, actions, freezes)
        yield IncidentBot(bot, actions, freezes)


def text_of(call: Call) -> str:
    return str(call.args.get("text", ""))


async def declare(bot: BotHarness, text: str = "API returns 500s sev1", *, user: str = "U0CAROL") -> str:
    """Declare through the slash command; returns the new incident channel's id."""
    mark = bot.fake.mark()
    await bot.slack.slash("/incident", f"declare {text}", user_id=user)
    created = await bot.fake.wait_for("conversations.create", after=mark)
    channel = str(created.response["channel"]["id"])
    await bot.fake.wait_for_response(lambda r: "declared by" in str(r.body.get("text", "")), after=mark)
    return channel


def value_of(bot: BotHarness, channel: str, action_id: str) -> str:
    """The value of the newest button with `action_id` in `channel` (what a click would send)."""
    for message in reversed(bot.fake.messages_in(channel)):
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return str(element["value"])
    raise AssertionError(f"no button {action_id} in {channel}")


def attempt_value(incident_id: int, attempt: int) -> str:
    return json.dumps({"i": incident_id, "a": attempt}, separators=(",", ":"))
