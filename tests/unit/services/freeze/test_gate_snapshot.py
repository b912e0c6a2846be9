"""The gate's in-memory snapshot: one reload for many askers, local writes seen at once, others within the TTL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.services.freeze.gate import TTL_SECONDS, GateSnapshot
from bot.services.freeze.models import Exemption, ExemptionStatus, FreezeWindow, GateUnavailable
from tests.support.clock import FakeClock

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def window(i: int, starts_in: timedelta = timedelta(), hours: int = 2) -> FreezeWindow:
    return FreezeWindow(
        id=i,
        environment="production",
        reason="Demo",
        starts_at=NOW + starts_in,
        ends_at=NOW + starts_in + timedelta(hours=hours),
        created_by="U0CAROL",
        created_at=NOW,
    )


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

    db.windows.append(window(1))  # written by another replica
    mono[0] += TTL_SECONDS / 2
    assert not (await gate.decide("production", None)).frozen  # still inside the TTL
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


def exemption(i: int, window_id: int, service: str, minutes: int) -> Exemption:
    return Exemption(
        id=i,
        window_id=window_id,
        service=service,
        duration=timedelta(minutes=minutes),
        reason="hotfix",
        requested_by="U0CAROL",
        requested_at=NOW,
        status=ExemptionStatus.APPROVED,
        decided_by="U0DAVE",
        decided_at=NOW,
        expires_at=NOW + timedelta(minutes=minutes),
    )


async def test_cached_decisions_change_exactly_when_a_window_starts_ends_or_an_exemption_lapses() -> None:
    """Decisions are kept per (environment, service) within a snapshot, but never past a change."""
    db, clock = Database(), FakeClock(NOW)
    first = FreezeWindow(
        id=1,
        environment="production",
        reason="Demo",
        starts_at=NOW,
        ends_at=NOW + timedelta(minutes=3),
        created_by="U0CAROL",
        created_at=NOW,
    )
    second = window(2, starts_in=timedelta(minutes=2), hours=1)
    db.windows += [first, second]
    db.exemptions.append(exemption(7, 1, "api", minutes=1))
    gate = GateSnapshot(db.load, clock, monotonic=lambda: 0.0)  # one snapshot throughout
    assert (await gate.decide("production", "api")).exemptions == (db.exemptions[0],)
    assert (await gate.decide("production", "web")).window == first
    clock.advance(timedelta(seconds=59))
    assert not (await gate.decide("production", "api")).frozen
    clock.advance(timedelta(seconds=1))  # the exemption lapses
    assert (await gate.decide("production", "api")).window == first
    clock.advance(timedelta(minutes=1))  # the second window starts
    assert (await gate.decide("production", "api")).window == second
    clock.advance(timedelta(minutes=1))  # the first ends
    assert (await gate.decide("production", "web")).window == second
    assert not (await gate.decide("staging", "web")).frozen
    assert db.loads == 1
    clock.set(NOW - timedelta(seconds=1))  # a clock set back: not from the cache
    assert not (await gate.decide("production", "web")).frozen


async def test_a_load_that_never_returns_fails_closed_within_the_timeout_and_the_next_asker_reloads() -> None:
    """A stranded database connection: no lock is held across the load, and nobody waits past the bound."""
    clock = FakeClock(NOW)
    stuck, loads = asyncio.Event(), [0]

    async def load(at: datetime, until: datetime) -> tuple[list[FreezeWindow], list[Exemption]]:
        loads[0] += 1
        if loads[0] == 1:
            await stuck.wait()  # never set: the server never answers
        return [window(1)], []

    gate = GateSnapshot(load, clock, monotonic=lambda: 0.0, timeout=0.2)
    started = asyncio.get_running_loop().time()
    answers = await asyncio.wait_for(
        asyncio.gather(*(gate.decide("production", None) for _ in range(5)), return_exceptions=True), timeout=5
    )
    assert all(
        isinstance(a, GateUnavailable) and a.reason == "the database did not answer within 0.2s" for a in answers
    ), answers
    assert asyncio.get_running_loop().time() - started < 1 and loads[0] == 1  # one load, shared
    assert (await asyncio.wait_for(gate.decide("production", None), timeout=5)).window == window(1)


async def test_a_load_that_fails_is_reported_not_cached() -> None:
    clock, calls = FakeClock(NOW), [0]

    async def load(at: datetime, until: datetime) -> tuple[list[FreezeWindow], list[Exemption]]:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionRefusedError("refused")
        return [], []

    gate = GateSnapshot(load, clock, monotonic=lambda: 0.0)
    with pytest.raises(GateUnavailable, match=r"could not be read \(ConnectionRefusedError\)"):
        await gate.decide("production", None)
    assert not (await gate.decide("production", None)).frozen
