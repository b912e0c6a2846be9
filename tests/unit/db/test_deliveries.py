"""Claiming a delivery: the first claim wins, every later one loses — on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.db import deliveries, migrate
from bot.db.engine import Database
from tests.support.clock import FakeClock


async def test_the_first_claim_wins_and_repeats_lose(database_url: str) -> None:
    migrate.upgrade(database_url)
    db = Database(database_url)
    now = FakeClock().now()
    try:
        outcomes = []
        for key in ("event:Ev1", "event:Ev1", "event:Ev2"):
            async with db.unit_of_work() as session:
                outcomes.append(await deliveries.claim(session, key, now))
        assert outcomes == [True, False, True]
    finally:
        await db.dispose()
