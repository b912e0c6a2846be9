"""Helpers for incident tests: a bot with a playbook and fake actions, declaring, clicking, waiting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.runtime import Overrides
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Call, ResponsePost
from bot.services.incidents import ActionFactory
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
RUN_ROLLBACK = "incident.step.run:rollback"  # the Run button of `http_rollback_playbook`'s one step


def http_rollback_playbook(hook_url: str) -> str:
    """One production-changing step: POST {hook_url}/rollback (a `FakeHook` answers it)."""
    return f"""\
        playbooks:
          - name: production-incident
            steps:
              - id: rollback
                label: Roll back last deploy
                changes_production: true
                action: {{http: {{url: "{hook_url}/rollback", json: {{service: api}}}}}}
        """


class FakeFreezes:
    """A `FreezeLookup` whose answer the test sets."""

    def __init__(self) -> None:
        self.active: ActiveFreeze | None = None
        self.asked: list[str] = []

    async def active_window(self, environment: str, *, service: str | None = None) -> ActiveFreeze | None:
        self.asked.append(environment)
        return self.active if self.active and self.active.environment == environment else None

    def freeze(self, freeze_id: int, now: datetime) -> ActiveFreeze:
        self.active = ActiveFreeze(
            id=freeze_id,
            environment="production",
            reason="Black Friday",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=5),
            created_by="U0CAROL",
        )
        return self.active


class FakeFreezer:
    """An `IncidentFreezer` over a FakeFreezes: starting a freeze makes the lookup report it.
    Set `fails_with` and starting one raises it, as a freeze service that is down would."""

    def __init__(self, freezes: FakeFreezes, now: Callable[[], datetime]) -> None:
        self._freezes = freezes
        self._now = now
        self.started: list[tuple[int, str, str]] = []
        self.lifted: list[tuple[int, str]] = []
        self.fails_with: Exception | None = None

    async def freeze_for_incident(self, *, environment: str, incident_id: int, reason: str, actor: str) -> ActiveFreeze:
        if self.fails_with is not None:
            raise self.fails_with
        freeze = ActiveFreeze(
            id=100 + incident_id,
            environment=environment,
            reason=reason,
            starts_at=self._now(),
            ends_at=self._now() + timedelta(days=7),
            created_by=actor,
        )
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
    freezer: FakeFreezer | None = None

    @property
    def fake(self) -> FakeSlack:
        return self.bot.fake


def incident_config(tmp_path: Path, extra: str = PLAYBOOK) -> Path:
    return write_config(tmp_path / "config", extra)


def fakes(actions: ActionFactory, freezes: FakeFreezes, freezer: FakeFreezer | None = None) -> Overrides:
    """The runtime's collaborators for incident tests: fake actions and a freeze lookup the test sets
    (and, for `freeze.on_incident`, a fake freezer)."""
    return Overrides(build_action=actions, freezes=freezes, freezer=freezer)


def add_sre_group(fake: FakeSlack) -> None:
    """The responder group the test playbooks name (`S0SRE`), in the Slack stand-in."""
    fake.usergroups.setdefault("S0SRE", list(SRE_GROUP))


@asynccontextmanager
async def incident_bot(
    *,
    database_url: str,
    config_dir: Path,
    fake: FakeSlack,
    clock: FakeClock,
    actions: FakeActions | None = None,
    build_action: ActionFactory | None = None,
    fake_freezer: bool = False,
    **settings: Any,
) -> AsyncIterator[IncidentBot]:
    """A running bot with fake actions (or `build_action`, e.g. the real one) and a fake freeze lookup."""
    actions = actions or FakeActions()
    freezes = FakeFreezes()
    freezer = FakeFreezer(freezes, clock.now) if fake_freezer else None
    async with running_bot(
        database_url=database_url,
        config_dir=config_dir,
        fake=fake,
        clock=clock,
        overrides=fakes(build_action or actions, freezes, freezer),
        **settings,
    ) as bot:
        add_sre_group(fake)
        yield IncidentBot(bot, actions, freezes, freezer)


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
    return button_value(bot.fake, channel, action_id)


def button_value(fake: FakeSlack, channel: str, action_id: str) -> str:
    """`value_of` for a bot in another process: only the stand-in knows what it posted."""
    for message in reversed(fake.messages_in(channel)):
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return str(element["value"])
    raise AssertionError(f"no button {action_id} in {channel}")


def declared(number: int) -> Callable[[ResponsePost], bool]:
    """Waits for the reply "Incident #<number> declared"."""
    return lambda reply: f"Incident #{number} declared" in str(reply.text)


def attempt_value(incident_id: int, attempt: int) -> str:
    return json.dumps({"i": incident_id, "a": attempt}, separators=(",", ":"))
