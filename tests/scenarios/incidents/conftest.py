"""An incident bot per test: the playbook config, fake actions, a fake freeze lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.clock import FakeClock
from tests.support.incidents import IncidentBot, incident_bot, incident_config


@pytest.fixture
async def ibot(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[IncidentBot]:
    async with incident_bot(
        database_url=database_url, config_dir=incident_config(tmp_path), fake=fake_slack, clock=clock
    ) as harness:
        yield harness
