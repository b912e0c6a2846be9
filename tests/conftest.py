"""Shared fixtures: the Slack stand-in, databases (SQLite and PostgreSQL), HTTP targets, and a running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import freezegun
import pytest

from bot.db import migrate
from bot.db.engine import Database
from bot.sandbox.fakes.targets import TargetServer, target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.sandbox.fixtures import fake_slack  # noqa: F401  (re-exported fixture)
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.databases import database_url_for
from tests.support.redis import redis_test_url

# freeze_time getattr()s every attribute of every loaded module; kubernetes.client (imported by
# tests/deploy to validate manifests) answers that by lazily importing pydantic models, which
# cannot be built while datetime is faked.
freezegun.configure(extend_ignore_list=["kubernetes"])


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that uses it runs on SQLite and on PostgreSQL."""
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with database_url_for("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with database_url_for("postgres", tmp_path) as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on `database_url`, disposed of afterwards."""
    migrate.upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database (TEST_REDIS_URL), empty at start. Tests using it are not parallel-safe."""
    with redis_test_url() as url:
        yield url


@pytest.fixture
async def targets() -> AsyncIterator[TargetServer]:
    """A local HTTP server whose paths answer what the test sets (`targets.set("/api", status=503)`)."""
    async with target_server() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config")


@pytest.fixture
async def bot(
    database_url: str,
    config_dir: Path,
    fake_slack: FakeSlack,  # noqa: F811
    clock: FakeClock,
) -> AsyncIterator[BotHarness]:
    async with running_bot(database_url=database_url, config_dir=config_dir, fake=fake_slack, clock=clock) as harness:
        yield harness
