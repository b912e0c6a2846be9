"""`/freeze list` (and the freeze line of every health answer) from a short-lived snapshot.

Listing is the hot read: every `/freeze list` and every health answer asks for the active and
upcoming windows, and building an ORM query and session per ask cost more of the event loop than
acknowledging the request. The list is kept for at most `TTL_SECONDS` (concurrent askers share
one load), windows that ended meanwhile are dropped at read time, and any write made through this
process drops the snapshot at once — the same promise the gate makes: a window created on another
replica shows here within a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.services.freeze_types import FreezeWindow

TTL_SECONDS = 1.0


class UpcomingSnapshot:
    def __init__(self, load: Callable[[datetime], Awaitable[list[FreezeWindow]]], *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._monotonic = monotonic
        self._windows: list[FreezeWindow] | None = None
        self._loaded_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the list (after a local write), so the next ask reads the database."""
        self._windows = None
        self._generation += 1

    def _fresh(self) -> list[FreezeWindow] | None:
        if self._windows is not None and self._monotonic() - self._loaded_at < TTL_SECONDS:
            return self._windows
        return None

    async def windows(self, now: datetime) -> list[FreezeWindow]:
        """Active and upcoming windows at `now`, soonest first."""
        windows = self._fresh()
        if windows is None:
            async with self._lock:
                windows = self._fresh()        # another asker may have loaded it while we waited
                if windows is None:
                    generation, loaded_at = self._generation, self._monotonic()
                    windows = await self._load(now)
                    if generation == self._generation:   # a write during the load makes it stale
                        self._windows, self._loaded_at = windows, loaded_at
        return [w for w in windows if w.ends_at > now]
