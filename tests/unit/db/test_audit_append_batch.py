"""Appending a batch of audit entries (the ticker's way): the same chain as one append each, refused
as a whole without the key, and safe beside concurrent writers and failed transactions."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from bot.db import migrate
from bot.db.audit import AuditKey, NewEntry, append_entries, append_entry
from bot.db.engine import Database
from bot.services.audit import AuditKeyMissing, AuditLog
from tests.support.clock import FakeClock

KEY = AuditKey(b"k3y-for-the-audit-log-0123456789")
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def notes(prefix: str, count: int) -> list[NewEntry]:
    return [
        NewEntry(
            "system",
            "freeze.announced",
            f"{prefix}#{i}",
            {"kind": "started", "key": f"w{i}:started", "token": "s3cret"},
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("key", [KEY, None], ids=["signed", "unsigned"])
async def test_a_batch_writes_the_chain_one_append_each_would(database_url: str, key: AuditKey | None) -> None:
    migrate.upgrade(database_url)
    db = Database(database_url, audit_key=key)
    try:
        async with db.unit_of_work() as session:
            one_by_one = [
                await append_entry(session, at=AT, actor=e.actor, action=e.action, subject=e.subject, details=e.details)
                for e in notes("a", 3)
            ]
        async with db.unit_of_work() as session:
            batch = await append_entries(session, at=AT, entries=notes("b", 5))
            assert await append_entries(session, at=AT, entries=[]) == []
        async with db.unit_of_work() as session:
            after = await append_entry(session, at=AT, actor="U0CAROL", action="note", subject="after")

        assert [e.seq for e in [*one_by_one, *batch, after]] == list(range(1, 10))
        assert batch[0].prev_hash == one_by_one[-1].hash and after.prev_hash == batch[-1].hash
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(batch))
        assert batch[0].details["token"] == "[redacted]"  # redacted as a single append is
        stored = [e async for e in AuditLog(db, FakeClock()).entries()]
        assert [(e.seq, e.hash, e.details) for e in stored[3:8]] == [(e.seq, e.hash, e.details) for e in batch]
        result = await AuditLog(db, FakeClock()).verify()
        assert result.ok and result.checked == 9, result.reason
    finally:
        await db.dispose()


async def test_a_batch_without_the_key_after_signed_entries_is_refused_whole(database_url: str) -> None:
    migrate.upgrade(database_url)
    keyed, unkeyed = Database(database_url, audit_key=KEY), Database(database_url)
    try:
        async with keyed.unit_of_work() as session:
            await append_entries(session, at=AT, entries=notes("signed", 2))
        with pytest.raises(AuditKeyMissing, match=r"entry #2 is\)"):
            async with unkeyed.unit_of_work() as session:
                await append_entries(session, at=AT, entries=notes("unsigned", 4))
        result = await AuditLog(keyed, FakeClock()).verify()
        assert result.ok and result.checked == 2, result.reason
    finally:
        await keyed.dispose()
        await unkeyed.dispose()


class _Abandoned(Exception):
    pass


async def test_a_batch_whose_transaction_fails_leaves_no_gap_and_no_fork(database_url: str) -> None:
    migrate.upgrade(database_url)
    db = Database(database_url, audit_key=KEY)
    try:
        with pytest.raises(_Abandoned):
            async with db.unit_of_work() as session:
                await append_entries(session, at=AT, entries=notes("lost", 50))
                raise _Abandoned  # e.g. the outbox insert after it failed: everything rolls back
        async with db.unit_of_work() as session:
            [first] = await append_entries(session, at=AT, entries=notes("kept", 1))
        assert first.seq == 1
        result = await AuditLog(db, FakeClock()).verify()
        assert result.ok and result.checked == 1, result.reason
    finally:
        await db.dispose()


async def test_batches_and_single_appends_from_two_pools_keep_one_chain(postgres_url: str) -> None:
    """Two replicas' pools on one PostgreSQL appending at once: the head-row lock orders the batches."""
    migrate.upgrade(postgres_url)
    replicas = [Database(postgres_url, audit_key=KEY) for _ in range(2)]
    log = AuditLog(replicas[0], FakeClock())

    async def batch(db: Database, name: str) -> None:
        async with db.unit_of_work() as session:
            await append_entries(session, at=AT, entries=notes(name, 20))

    async def single(db: Database, name: str) -> None:
        await AuditLog(db, FakeClock()).record(actor="U0CAROL", action="note", subject=name)

    try:
        await asyncio.gather(
            *(batch(replicas[i % 2], f"r{i}") for i in range(10)),
            *(single(replicas[i % 2], f"s{i}") for i in range(20)),
        )
        result = await log.verify()
        assert result.ok and result.checked == 10 * 20 + 20, result.reason
        subjects = [e.subject async for e in log.entries()]
        for i in range(10):  # each batch's entries are contiguous: no other writer got between them
            first = subjects.index(f"r{i}#0")
            assert subjects[first : first + 20] == [f"r{i}#{n}" for n in range(20)]
    finally:
        for db in replicas:
            await db.dispose()
