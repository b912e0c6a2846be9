"""HealthWatch against a real database: claims isolated per service, replicas that disagree."""

from __future__ import annotations

from typing import Any

import pytest

from bot.checks.base import CheckResult, Status
from bot.config import ServiceConfig
from bot.db import health as watch_table
from bot.db.engine import Database
from bot.services.health import HealthWatch
from tests.support.clock import FakeClock


def watched(name: str) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {"name": name, "tcp": {"host": "127.0.0.1", "port": 1}, "watch": True, "watch_threshold": 2}
    )


def checked(clock: FakeClock, **statuses: Status) -> list[tuple[ServiceConfig, CheckResult]]:
    return [
        (watched(name), CheckResult(name, status, None, status.value, clock.now())) for name, status in statuses.items()
    ]


async def test_a_failing_claim_does_not_hide_the_changes_committed_before_it(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = HealthWatch(db, clock)
    real = watch_table.current_state

    async def broken_for_b(session: Any, service: str, at: Any) -> str:
        if service == "b":
            raise RuntimeError("connection reset")
        return await real(session, service, at)

    monkeypatch.setattr(watch_table, "current_state", broken_for_b)
    assert await watch.observe(checked(clock, a=Status.DOWN, b=Status.DOWN, c=Status.DOWN)) == []
    changes = await watch.observe(checked(clock, a=Status.DOWN, b=Status.DOWN, c=Status.DOWN))
    assert [(c.service, c.new) for c in changes] == [("a", Status.DOWN), ("c", Status.DOWN)]

    monkeypatch.setattr(watch_table, "current_state", real)  # the database is back: b is claimed next tick
    changes = await watch.observe(checked(clock, a=Status.DOWN, b=Status.DOWN, c=Status.DOWN))
    assert [(c.service, c.new) for c in changes] == [("b", Status.DOWN)]


async def test_a_replica_whose_memory_is_stale_still_announces_the_next_outage(db: Database, clock: FakeClock) -> None:
    first, second = HealthWatch(db, clock), HealthWatch(db, clock)
    for _ in range(2):
        claimed = await first.observe(checked(clock, api=Status.DOWN))
        await second.observe(checked(clock, api=Status.DOWN))
    assert [(c.old, c.new) for c in claimed] == [("unknown", Status.DOWN)]

    # second sees the recovery and records it; first only sees a blip of it, so it still remembers "down"
    for _ in range(2):
        recovered = await second.observe(checked(clock, api=Status.UP))
    assert [(c.old, c.new) for c in recovered] == [("down", Status.UP)]
    await first.observe(checked(clock, api=Status.UP))

    # the next outage, seen by first alone
    assert await first.observe(checked(clock, api=Status.DOWN)) == []
    again = await first.observe(checked(clock, api=Status.DOWN))
    assert [(c.old, c.new) for c in again] == [("up", Status.DOWN)]
