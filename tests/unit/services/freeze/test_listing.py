"""`/freeze list` from a short-lived snapshot: one query for many askers, local writes seen at once,
other replicas' within the TTL, ended windows never shown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.clock import SystemClock
from bot.config import load_config
from bot.db import migrate
from bot.db.engine import Database, DatabaseBounds
from bot.resilience import DatabaseTimeout
from bot.services.freeze.listing import TTL_SECONDS, UpcomingSnapshot
from bot.services.freeze.models import FreezeWindow
from bot.services.freeze.service import FreezeService
from tests.support.bot import write_config
from tests.support.tcp_proxy import faulty_proxy

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def window(i: int, hours: float = 2) -> FreezeWindow:
    return FreezeWindow(
        id=i,
        environment="production",
        reason="Demo",
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=hours),
        created_by="U0CAROL",
        created_at=NOW,
    )


class Table:
    def __init__(self) -> None:
        self.windows: list[FreezeWindow] = []
        self.loads = 0

    async def load(self, now: datetime) -> list[FreezeWindow]:
        self.loads += 1
        await asyncio.sleep(0)  # let concurrent askers pile up behind the lock
        return [w for w in self.windows if w.ends_at > now]


async def test_askers_share_one_load_and_staleness_is_bounded_by_the_ttl() -> None:
    table, mono = Table(), [0.0]
    listing = UpcomingSnapshot(table.load, monotonic=lambda: mono[0])
    assert await asyncio.gather(*(listing.windows(NOW) for _ in range(20))) == [[]] * 20
    assert table.loads == 1
    table.windows.append(window(1))  # another replica creates a window
    mono[0] += TTL_SECONDS / 2
    assert await listing.windows(NOW) == []
    mono[0] += TTL_SECONDS / 2
    assert [w.id for w in await listing.windows(NOW)] == [1] and table.loads == 2


async def test_a_local_write_is_listed_at_once_even_one_made_during_a_load() -> None:
    table, mono = Table(), [0.0]
    listing = UpcomingSnapshot(table.load, monotonic=lambda: mono[0])
    await listing.windows(NOW)
    table.windows.append(window(1))
    listing.invalidate()
    assert [w.id for w in await listing.windows(NOW)] == [1]

    loading = asyncio.ensure_future(listing.windows(NOW))
    await asyncio.sleep(0)  # the load has read the table…
    table.windows.append(window(2))
    listing.invalidate()  # …and a write lands before it returns
    await loading
    assert [w.id for w in await listing.windows(NOW)] == [1, 2]


async def test_a_window_that_ended_is_not_listed_from_the_snapshot() -> None:
    table, mono = Table(), [0.0]
    table.windows = [window(1, hours=1), window(2, hours=3)]
    listing = UpcomingSnapshot(table.load, monotonic=lambda: mono[0])
    await listing.windows(NOW)
    assert [w.id for w in await listing.windows(NOW + timedelta(hours=2))] == [2]


async def test_listing_asks_the_database_once_for_many_commands(database_url: str, tmp_path: Path) -> None:
    """Twenty `/freeze list`s (and the health answers that ask for the freeze status) at once: one query."""
    migrate.upgrade(database_url)
    db = Database(database_url)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM freeze_window" in statement:
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    config = load_config(write_config(tmp_path / "config"), {}).config
    freezes = FreezeService(db, SystemClock(), config)
    try:
        now = datetime.now(UTC)
        created = await freezes.create(
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
            environment="production",
            reason="Release",
            actor="U0CAROL",
        )
        statements.clear()
        lists = await asyncio.gather(*(freezes.upcoming() for _ in range(20)))
        assert all([w.id for w in listed] == [created.id] for listed in lists)
        assert len(statements) == 1, statements
        cancelled = await freezes.cancel(created.id, actor="U0CAROL")  # a local write: listed at once
        assert cancelled.id not in [w.id for w in await freezes.upcoming()]
    finally:
        await db.dispose()


async def test_askers_during_a_black_hole_all_fail_after_one_bound_not_one_after_another(
    postgres_url: str, tmp_path: Path
) -> None:
    """The database accepts connections and never answers: five `/freeze list`s at once share the
    one load and all get `DatabaseTimeout` after one bound (behind a lock they took five bounds)."""
    migrate.upgrade(postgres_url)
    bound = 0.5
    async with faulty_proxy(postgres_url) as proxy:
        db = Database(proxy.url_for(postgres_url), DatabaseBounds(operation=bound, connect=2))
        freezes = FreezeService(db, SystemClock(), load_config(write_config(tmp_path / "config"), {}).config)
        try:
            proxy.mode = "blackhole"
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await asyncio.gather(*(freezes.upcoming() for _ in range(5)), return_exceptions=True)
            took = loop.time() - started
            assert all(isinstance(r, DatabaseTimeout) for r in results), results
            assert proxy.accepted == 1, proxy.accepted  # one load tried to connect, not five
            assert took < 2 * bound, took
        finally:
            proxy.mode = "refuse"
            await db.dispose()


async def test_ready_answers_only_from_a_fresh_snapshot_and_never_waits() -> None:
    """What a Slack command may put in its acknowledgement: the list when the snapshot is fresh,
    None (answer after the ack) when it is missing, stale or dropped by a local write."""
    table, mono = Table(), [0.0]
    listing = UpcomingSnapshot(table.load, monotonic=lambda: mono[0])
    table.windows += [window(1), window(2, hours=0.5)]
    assert listing.ready(NOW) is None and table.loads == 0  # nothing loaded: no answer, no load started
    await listing.windows(NOW)
    assert [w.id for w in listing.ready(NOW) or []] == [1, 2]
    assert [w.id for w in listing.ready(NOW + timedelta(hours=1)) or []] == [1]  # ended ones are dropped
    mono[0] += TTL_SECONDS
    assert listing.ready(NOW) is None
    await listing.windows(NOW)
    listing.invalidate()
    assert listing.ready(NOW) is None and table.loads == 2
