"""Run the real bot over real HTTP against the Slack stand-in."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import load_config
from bot.db import migrate
from bot.runtime import Overrides, Runtime, build_runtime
from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.server import serve_asgi
from bot.server import build_app
from bot.settings import Settings
from tests.support.clock import FakeClock

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
API_TOKEN = "test-api-token"

BASE_CONFIG = """\
timezone: Europe/Berlin
channels:
  deploys: C0DEPLOYS
  alerts: C0ALERTS
access:
  responders: [U0CAROL, U0DAVE, S0SRE]
freeze:
  environments: [production, staging]
  reminders: [1h, 10m]
  max_duration: 7d
"""


def write_config(directory: Path, extra: str = "", *, base: str = BASE_CONFIG) -> Path:
    """A configuration directory: the base file plus an optional second file `extra.yaml`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "base.yaml").write_text(base)
    if extra:
        (directory / "extra.yaml").write_text(textwrap.dedent(extra))
    return directory


@dataclass
class BotHarness:
    url: str
    runtime: Runtime
    slack: SlackEventsClient
    fake: FakeSlack
    clock: FakeClock


def test_settings(database_url: str, config_dir: Path, fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "database_url": database_url,
        "guardrail_config": config_dir,
        "guardrail_api_token": API_TOKEN,
        "slack_app_token": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_bot(
    *,
    database_url: str,
    config_dir: Path,
    fake: FakeSlack,
    clock: FakeClock | None = None,
    environ: Mapping[str, str] | None = None,
    migrate_first: bool = True,
    overrides: Overrides | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[BotHarness]:
    clock = clock or FakeClock()
    settings = test_settings(database_url, config_dir, fake, **settings_overrides)
    if migrate_first:
        migrate.upgrade(database_url)
    loaded = load_config(config_dir, environ or {})
    runtime = build_runtime(settings, loaded, clock=clock, overrides=overrides)
    app, _ = build_app(runtime)
    async with serve_asgi(app) as url, SlackEventsClient(url, SIGNING_SECRET, fake) as client:
        yield BotHarness(url=url, runtime=runtime, slack=client, fake=fake, clock=clock)
