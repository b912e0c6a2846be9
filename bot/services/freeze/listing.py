"""`/freeze list` (and the freeze line of every health answer) from a short-lived snapshot.

Listing is the hot read: every `/freeze list` and every health answer asks for the active and
upcoming windows, and building an ORM query and session per ask cost more of the event loop than
acknowledging the request. The list is kept for at most `TTL_SECONDS`, windows that ended
meanwhile are dropped at read time, and any write made through this process drops the snapshot
at once — the same promise the gate makes: a window created on another replica shows here within
a second.

Concurrent askers share one load without a lock (`shared_load.SharedLoad`, as the gate does): with
the database silent, N askers all get `DatabaseTimeout` after one bound, not one after another.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.resilience import DatabaseTimeout
from bot.services.freeze.models import FreezeWindow
from bot.services.shared_load import SharedLoad

TTL_SECONDS = 1.0
DEFAULT_TIMEOUT = 15.0  # seconds; the service passes the database's operation bound


class UpcomingSnapshot:
    def __init__(
        self,
        load: Callable[[datetime], Awaitable[list[FreezeWindow]]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._load = load
        self._monotonic = monotonic
        self._windows: list[FreezeWindow] | None = None
        self._loaded_at = 0.0
        self._generation = 0
        self._loads: SharedLoad[list[FreezeWindow]] = SharedLoad(timeout)

    def invalidate(self) -> None:
        """Forget the list (after a local write), so the next ask reads the database."""
        self._windows = None
        self._generation += 1
        self._loads.forget()  # a load begun before the write may miss it: don't let askers join it

    def _fresh(self) -> list[FreezeWindow] | None:
        if self._windows is not None and self._monotonic() - self._loaded_at < TTL_SECONDS:
            return self._windows
        return None

    def ready(self, now: datetime) -> list[FreezeWindow] | None:
        """The windows at `now` when the snapshot is fresh (no waiting, no database); else None."""
        windows = self._fresh()
        return None if windows is None else [w for w in windows if w.ends_at > now]

    async def windows(self, now: datetime) -> list[FreezeWindow]:
        """Active and upcoming windows at `now`, soonest first (`DatabaseTimeout` when the load
        did not finish within the timeout)."""
        windows = self._fresh()
        if windows is None:
            try:
                windows = await self._loads.get(functools.partial(self._load_and_keep, now, self._generation))
            except DatabaseTimeout:
                raise
            except TimeoutError:
                raise DatabaseTimeout(f"the database did not answer within {self._loads.timeout:g}s") from None
        return [w for w in windows if w.ends_at > now]

    async def _load_and_keep(self, now: datetime, generation: int) -> list[FreezeWindow]:
        loaded_at = self._monotonic()
        windows = await self._load(now)
        # Kept only when nothing was written meanwhile and no newer load replaced this slow one.
        if generation == self._generation and self._loads.is_current():
            self._windows, self._loaded_at = windows, loaded_at
        return windows
