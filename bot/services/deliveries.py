"""Slack deliveries claimed once: an event Slack retries, or delivers to another replica too, is
processed by the first claimant only. Keys are forgotten after Slack stops redelivering."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock
from bot.db import deliveries as table
from bot.db.engine import Database

MEMORY = timedelta(hours=2)  # Slack retries for about an hour


class Deliveries:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, key: str) -> bool:
        """Record `key` (e.g. "event:Ev0…"); True when this caller is the first to claim it."""
        async with self._db.unit_of_work() as session:
            return await table.claim(session, key, self._clock.now())

    async def forget_old(self) -> None:
        """Drop the keys Slack can no longer redeliver (the scheduler's housekeeping)."""
        async with self._db.unit_of_work() as session:
            await table.forget_before(session, self._clock.now() - MEMORY)
