"""The gate's in-memory snapshot: one reload for many askers, local writes seen at once, others within the TTL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.services.freeze_gate import TTL_SECONDS, GateSnapshot
from bot.services.freeze_types import Exemption, FreezeWindow
from tests.support.clock import FakeClock

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def window(i: int, starts_in: timedelta = timedelta(), hours: int = 2) -> FreezeWindow:
    return FreezeWindow(id=i, environment="production", reason="Demo", starts_at=NOW + starts_in,
                        ends_at=NOW + starts_in + timedelta(hours=hours), created_by="U0CAROL", created_at=NOW)


class Database:
    """What the loader reads; counts loads."""

    def __init__(self) -> None:
        self.windows: list[FreezeWindow] = []
        self.exemptions: list[Exemption] = []
        self.loads = 0

    async def load(self, at: datetime, until: datetime) -> tuple[list[FreezeWindow], list[Exemption]]:
        self.loads += 1
        await asyncio.sleep(0)  # let concurrent askers pile up behind the lock
        return [w for w in self.windows if w.starts_at <= until and w.ends_at > at], list(self.exemptions)


async def test_concurrent_askers_share_one_load_and_staleness_is_bounded_by_the_ttl() -> None:
    db, clock, mono = Database(), FakeClock(NOW), [0.0]
    gate = GateSnapshot(db.load, clock, monotonic=lambda: mono[0])
    answers = await asyncio.gather(*(gate.decide("production", "api") for _ in range(50)))
    assert db.loads == 1 and not any(a.frozen for a in answers)

    db.windows.append(window(1))          # written by another replica
    mono[0] += TTL_SECONDS / 2
    assert not (await gate.decide("production", None)).frozen   # still inside the TTL
    mono[0] += TTL_SECONDS
    assert (await gate.decide("production", None)).window == window(1)
    assert db.loads == 2


async def test_a_local_write_is_seen_immediately() -> None:
    db, clock = Database(), FakeClock(NOW)
    gate = GateSnapshot(db.load, clock, monotonic=lambda: 0.0)
    assert not (await gate.decide("production", None)).frozen
    db.windows.append(window(1))
    gate.invalidate()
    assert (await gate.decide("production", None)).frozen


async def test_windows_starting_soon_take_effect_without_a_reload() -> None:
    db, clock = Database(), FakeClock(NOW)
    db.windows.append(window(1, starts_in=timedelta(minutes=2)))
    gate = GateSnapshot(db.load, clock, monotonic=lambda: 0.0)
    assert not (await gate.decide("production", None)).frozen
    clock.advance(timedelta(minutes=2))
    assert (await gate.decide("production", None)).frozen and db.loads == 1
    clock.advance(timedelta(hours=2))
    assert not (await gate.decide("production", None)).frozen
