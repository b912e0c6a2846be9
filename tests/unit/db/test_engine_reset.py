"""`Database`'s pool reset (a bound expired) leaves no connection open for the garbage collector."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.engine import Database
from bot.resilience import DatabaseTimeout


async def _driver_connection(session: AsyncSession) -> Any:
    """The psycopg connection under `session` (checked out from the pool for as long as the session lasts)."""
    await session.execute(text("SELECT 1"))
    return (await (await session.connection()).get_raw_connection()).driver_connection


async def test_connections_idle_or_out_during_a_pool_reset_are_closed_by_dispose(postgres_url: str) -> None:
    db = Database(postgres_url)
    async with db.reader() as held:
        out = await _driver_connection(held)
        async with db.reader() as brief:
            idle = await _driver_connection(brief)  # back in the pool, idle, when the reset comes
        assert out is not idle
        with pytest.raises(DatabaseTimeout):
            async with db.reader(bound=0.05):
                await asyncio.Event().wait()  # the block that never finishes: its bound resets the pool
    # `held` ended after the reset: its connection went back to the pool the reset threw away
    await db.dispose()

    assert idle.closed and out.closed
