"""The audit log's hash chain: appends, verification, tampering, concurrent writers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bot.db import migrate
from bot.db.audit import AuditKey
from bot.db.engine import Database
from bot.services.audit import AuditKeyMissing, AuditLog
from tests.support.clock import FakeClock


@pytest.fixture
async def audit(database_url: str, clock: FakeClock) -> AsyncIterator[AuditLog]:
    migrate.upgrade(database_url)
    db = Database(database_url)
    yield AuditLog(db, clock)
    await db.dispose()


async def test_entries_chain_and_verify(audit: AuditLog) -> None:
    first = await audit.record(actor="U0ALICE", action="freeze.created", subject="#1", details={"reason": "Demo"})
    second = await audit.record(actor="system", action="freeze.started", subject="#1")

    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    result = await audit.verify()
    assert result.ok and result.checked == 2
    assert [e.action for e in await audit.latest(10)] == ["freeze.created", "freeze.started"]


async def test_secrets_are_redacted_before_they_are_written(audit: AuditLog) -> None:
    entry = await audit.record(
        actor="system",
        action="step.run",
        subject="rollback",
        details={"headers": {"Authorization": "Bearer s3cret"}, "api_token": "x"},
    )
    assert "s3cret" not in str(entry.details)
    assert entry.details["headers"]["Authorization"] == "[redacted]"
    assert entry.details["api_token"] == "[redacted]"


async def test_an_edited_row_is_named_by_verify(audit: AuditLog) -> None:
    for i in range(5):
        await audit.record(actor="U0ALICE", action="note", subject=f"n{i}", details={"i": i})
    async with audit._db.unit_of_work() as session:  # a person with database access edits history
        await session.execute(text("UPDATE audit_entry SET actor = 'U0MALLORY' WHERE seq = 3"))

    result = await audit.verify()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "changed" in (result.reason or "")


async def test_a_deleted_last_row_is_detected(audit: AuditLog) -> None:
    for i in range(3):
        await audit.record(actor="system", action="note", subject=f"n{i}")
    async with audit._db.unit_of_work() as session:
        await session.execute(text("DELETE FROM audit_entry WHERE seq = 3"))
    result = await audit.verify()
    assert not result.ok and result.first_bad_seq == 3


async def test_a_deleted_middle_row_is_detected(audit: AuditLog) -> None:
    for i in range(4):
        await audit.record(actor="system", action="note", subject=f"n{i}")
    async with audit._db.unit_of_work() as session:
        await session.execute(text("DELETE FROM audit_entry WHERE seq = 2"))
    result = await audit.verify()
    assert not result.ok and result.first_bad_seq == 2


async def test_concurrent_tasks_never_fork_the_chain(audit: AuditLog) -> None:
    await asyncio.gather(*(audit.record(actor="system", action="race", subject=str(i)) for i in range(40)))
    result = await audit.verify()
    assert result.ok and result.checked == 40


async def test_config_hash_is_recorded_only_when_it_changes(audit: AuditLog) -> None:
    assert await audit.record_config("a" * 64, ["playbooks/guardrail.yaml"]) is True
    assert await audit.record_config("a" * 64, ["playbooks/guardrail.yaml"]) is False
    assert await audit.record_config("b" * 64, ["playbooks/guardrail.yaml"]) is True
    assert [e.subject[0] for e in await audit.latest(10)] == ["a", "b"]
    assert (await audit.verify()).ok


async def test_two_processes_on_one_postgres_keep_one_chain(postgres_url: str) -> None:
    migrate.upgrade(postgres_url)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.audit_writer", postgres_url, "60", name
        )
        for name in ("alpha", "beta")
    ]
    codes = await asyncio.gather(*(p.wait() for p in procs))
    assert codes == [0, 0]
    db = Database(postgres_url)
    try:
        result = await AuditLog(db, FakeClock()).verify()
    finally:
        await db.dispose()
    assert result.ok, result.reason
    assert result.checked == 120


async def test_values_longer_than_their_columns_are_clipped_before_hashing(audit: AuditLog) -> None:
    # e.g. an `api:<name>` actor from a long pipeline name: what is stored must be what was hashed
    entry = await audit.record(actor="api:" + "x" * 150, action="deploy." + "y" * 150, subject="s" * 400)
    result = await audit.verify()
    assert result.ok, result.reason
    assert (len(entry.actor), len(entry.action), len(entry.subject)) == (100, 100, 300)
    [stored] = await audit.latest(1)
    assert (stored.actor, stored.action, stored.subject) == (entry.actor, entry.action, entry.subject)


async def test_a_process_without_the_key_cannot_append_after_signed_entries(
    database_url: str, clock: FakeClock
) -> None:
    migrate.upgrade(database_url)
    keyed, unkeyed = (
        Database(database_url, audit_key=AuditKey(b"k3y-for-the-audit-log-0123456789")),
        Database(database_url),
    )
    try:
        await AuditLog(unkeyed, clock).record(actor="system", action="note", subject="before the key")
        await AuditLog(keyed, clock).record(actor="system", action="note", subject="signed")
        with pytest.raises(AuditKeyMissing, match=r"entry #2 is\) and this process has no key: set GUARDRAIL_AUDIT"):
            await AuditLog(unkeyed, clock).record(actor="system", action="note", subject="unsigned")
        assert await AuditLog(unkeyed, clock).key_missing() is not None
        log = AuditLog(keyed, clock)
        assert await log.key_missing() is None
        await log.record(actor="system", action="note", subject="signed again")
        result = await log.verify()
        assert result.ok and result.checked == 3, result.reason  # nothing was written, the chain stays whole
    finally:
        await keyed.dispose()
        await unkeyed.dispose()
