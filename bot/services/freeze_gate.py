"""The gate's decision, and the short-lived snapshot that lets it answer CI without a query per request.

The snapshot holds every window that is in force or starts within `HORIZON`, with their approved
exemptions; it is reloaded at most once per `TTL` (concurrent askers share one reload) and
dropped immediately after any write made through this process. A window created on another
replica is therefore seen here within `TTL`; recording a deploy always re-checks the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.services.freeze_types import Exemption, FreezeWindow, GateDecision

TTL_SECONDS = 1.0
HORIZON = timedelta(minutes=5)

Loader = Callable[[datetime, datetime], Awaitable[tuple[list[FreezeWindow], list[Exemption]]]]


def decide(environment: str, service: str | None, windows: Sequence[FreezeWindow],
           exemptions: Sequence[Exemption], now: datetime) -> GateDecision:
    """Frozen when a window is in force and (for a named service) no approved exemption covers it."""
    active = sorted((w for w in windows if w.environment == environment and w.is_active(now)),
                    key=lambda w: (-w.ends_at.timestamp(), w.id))
    if not active:
        return GateDecision(environment, None)
    if service is None:
        return GateDecision(environment, active[0])
    ids = {w.id for w in active}
    valid = tuple(e for e in exemptions if e.window_id in ids and e.applies(service, now))
    covered = {e.window_id for e in valid}
    blocking = next((w for w in active if w.id not in covered), None)
    if blocking is not None:
        return GateDecision(environment, blocking)
    return GateDecision(environment, None, valid)


@dataclass(frozen=True)
class _Snapshot:
    at: datetime
    monotonic: float
    windows: tuple[FreezeWindow, ...]
    exemptions: tuple[Exemption, ...]

    def fresh(self, now: datetime, monotonic: float) -> bool:
        return monotonic - self.monotonic < TTL_SECONDS and self.at <= now < self.at + HORIZON


class GateSnapshot:
    def __init__(self, load: Loader, clock: Clock, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._clock = clock
        self._monotonic = monotonic
        self._snapshot: _Snapshot | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the snapshot (after a local write), so the next question reads the database."""
        self._snapshot = None
        self._generation += 1

    async def decide(self, environment: str, service: str | None) -> GateDecision:
        now = self._clock.now()
        snapshot = self._snapshot
        if snapshot is None or not snapshot.fresh(now, self._monotonic()):
            snapshot = await self._reload(now)
        return decide(environment, service, snapshot.windows, snapshot.exemptions, now)

    async def _reload(self, now: datetime) -> _Snapshot:
        async with self._lock:
            current = self._snapshot
            if current is not None and current.fresh(now, self._monotonic()):
                return current  # another asker reloaded it while we waited
            generation = self._generation
            windows, exemptions = await self._load(now, now + HORIZON)
            snapshot = _Snapshot(now, self._monotonic(), tuple(windows), tuple(exemptions))
            if generation == self._generation:  # a write during the load makes it stale: don't keep it
                self._snapshot = snapshot
            return snapshot
