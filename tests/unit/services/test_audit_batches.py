"""A long audit log is verified and exported in batches, each read in a session of its own (bounded
by DATABASE_TIMEOUT on its own), with the same results as one read; export hands out entries only
after their read finished, so a slow consumer holds no session open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import migrate
from bot.db.audit import AuditKey, append_entry
from bot.db.engine import Database
from bot.services.audit import AuditLog
from tests.support.clock import FakeClock

KEY = AuditKey(b"k3y-for-the-audit-log-0123456789")
ENTRIES = 2500


class CountingDatabase(Database):
    """Counts the read sessions opened, and how many are open right now."""

    reads = 0
    open = 0

    @asynccontextmanager
    async def reader(self, *, bound: float | None = None) -> AsyncIterator[AsyncSession]:
        self.reads += 1
        self.open += 1
        try:
            async with super().reader(bound=bound) as session:
                yield session
        finally:
            self.open -= 1


async def test_a_long_log_is_verified_and_exported_in_separate_reads_with_identical_results(database_url: str) -> None:
    migrate.upgrade(database_url)
    db = CountingDatabase(database_url, audit_key=KEY)
    clock = FakeClock()
    try:
        async with db.unit_of_work(bound=120) as session:
            for i in range(ENTRIES):
                clock.advance(timedelta(seconds=1))
                await append_entry(
                    session, at=clock.now(), actor="U0CAROL", action="note", subject=f"n{i}", details={"i": i}
                )
        log = AuditLog(db, clock)

        db.reads = 0
        whole = await log.verify(batch=ENTRIES * 2)
        assert db.reads == 1 and whole.ok and whole.checked == ENTRIES, whole.reason
        db.reads = 0
        assert await log.verify() == whole and db.reads == 3  # 1,000 + 1,000 + 500
        db.reads = 0
        assert await log.verify(batch=300) == whole and db.reads == 9  # 8 batches of 300, then 100

        db.reads = 0
        exported = []
        async for entry in log.entries(batch=300):
            assert db.open == 0, "an entry was handed out while its read was still open"
            exported.append(entry)
        assert db.reads == 9
        assert exported == [e async for e in log.entries(batch=ENTRIES * 2)]
        assert [e.seq for e in exported] == list(range(1, ENTRIES + 1))

        async with db.unit_of_work() as session:  # an edit deep in the log: named the same either way
            await session.execute(text("UPDATE audit_entry SET actor = 'U0MALLORY' WHERE seq = 1700"))
        broken = await log.verify(batch=ENTRIES * 2)
        assert not broken.ok and broken.first_bad_seq == 1700 and broken.checked == 1699
        assert await log.verify(batch=300) == broken
    finally:
        await db.dispose()


async def test_entries_appended_while_a_long_log_is_verified_in_batches_do_not_read_as_tampering(
    database_url: str,
) -> None:
    migrate.upgrade(database_url)
    db = CountingDatabase(database_url, audit_key=KEY)
    log = AuditLog(db, FakeClock())
    try:
        async with db.unit_of_work(bound=60) as session:
            for i in range(300):
                await append_entry(session, at=FakeClock().now(), actor="system", action="note", subject=f"n{i}")

        async def append() -> None:
            for i in range(60):
                await log.record(actor="system", action="note", subject=f"late {i}")

        results = await asyncio.gather(*(log.verify(batch=25) for _ in range(3)), append())
        for result in results[:3]:
            assert result is not None and result.ok and result.checked >= 300, result
        assert (await log.verify()).checked == 360
    finally:
        await db.dispose()
