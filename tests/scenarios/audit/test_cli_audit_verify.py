"""`guardrail audit verify` against a database writer: an HMAC chain and anchors posted outside.

The attacker here can run any SQL but does not have GUARDRAIL_AUDIT_KEY. They rewrite history the
way guardrail's own code would (the algorithm is public), recomputing every later hash, or cut the
tail and rewind the head row. Each test drives the real command (`bot.cli.main`) and its exit code.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from bot.cli import main
from bot.db import migrate
from bot.db.audit import AuditKey, entry_content, entry_hash
from bot.db.engine import Database
from bot.db.urls import sync_url
from bot.services.audit import AuditLog
from tests.support.bot import write_config
from tests.support.clock import FakeClock

KEY = "k3y-for-the-audit-log-0123456789"
OTHER_KEY = "another-key-entirely-9876543210"


@contextmanager
def cli_environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment `guardrail` reads, on a migrated database."""
    monkeypatch.chdir(tmp_path)  # no developer .env
    for name in (
        "GUARDRAIL_AUDIT_KEY",
        "GUARDRAIL_AUDIT_KEY_PREVIOUS",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GUARDRAIL_CONFIG", str(write_config(tmp_path / "config")))
    migrate.upgrade(database_url)
    yield


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database and the environment `guardrail` reads; yields the database URL."""
    with cli_environment(database_url, tmp_path, monkeypatch):
        yield database_url


def write_entries(url: str, count: int, *, key: str | None, start: int = 0) -> None:
    """Append entries as a running guardrail would (with or without the key)."""

    async def run() -> None:
        db = Database(url, audit_key=AuditKey(key.encode()) if key else None)
        try:
            log = AuditLog(db, FakeClock())
            for i in range(start, start + count):
                await log.record(
                    actor="U0CAROL", action="freeze.created", subject=f"freeze#{i}", details={"reason": f"release {i}"}
                )
        finally:
            await db.dispose()

    asyncio.run(run())


def verify(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, key: str | None = KEY
) -> tuple[int, str]:
    if key is None:
        monkeypatch.delenv("GUARDRAIL_AUDIT_KEY", raising=False)
    else:
        monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", key)
    capsys.readouterr()
    code = main(["audit", "verify", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


@contextmanager
def as_database_writer(url: str) -> Iterator[Connection]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def head_of(conn: Connection, seq: int) -> str:
    return str(conn.execute(text("SELECT hash FROM audit_entry WHERE seq = :s"), {"s": seq}).scalar_one())


def rewrite_from(url: str, seq: int) -> None:
    """Edit entry `seq` and recompute it and every later entry with plain SHA-256 (what a writer
    without the key can do), then move the head row to the new last hash."""
    with as_database_writer(url) as conn, conn.begin():
        rows = conn.execute(
            text("SELECT seq, at, actor, action, subject, details FROM audit_entry WHERE seq >= :s ORDER BY seq"),
            {"s": seq},
        ).all()
        prev = "0" * 64 if seq == 1 else head_of(conn, seq - 1)
        for row in rows:
            actor = "U0MALLORY" if row.seq == seq else row.actor
            at = datetime.fromisoformat(row.at) if isinstance(row.at, str) else row.at  # SQLite: text
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            content = entry_content(
                seq=row.seq,
                at=at,
                actor=actor,
                action=row.action,
                subject=row.subject,
                details_json=row.details,
                prev_hash=prev,
            )
            digest = hashlib.sha256(content.encode()).hexdigest()
            conn.execute(
                text(
                    "UPDATE audit_entry SET actor = :a, prev_hash = :p, hash = :h, version = 1, "
                    "content = :c WHERE seq = :s"
                ),
                {"a": actor, "p": prev, "h": digest, "c": content, "s": row.seq},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def truncate_to(url: str, seq: int) -> None:
    """Delete every entry after `seq` and rewind the head row to it: a consistent, shorter chain."""
    with as_database_writer(url) as conn, conn.begin():
        conn.execute(text("DELETE FROM audit_entry WHERE seq > :s"), {"s": seq})
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": head_of(conn, seq)}
        )


def anchor_at(url: str, seq: int) -> str:
    with as_database_writer(url) as conn:
        return f"{seq}:{head_of(conn, seq)}"


def test_a_correct_chain_is_intact_with_its_key_and_its_anchors(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(cli_env, 5, key=KEY)
    code, out = verify(monkeypatch, capsys, "--anchor", anchor_at(cli_env, 3), "--anchor", anchor_at(cli_env, 5))
    assert code == 0, out
    assert "audit log intact: 5 entries verified (#1 to #5 signed with GUARDRAIL_AUDIT_KEY; 2 anchors found)" in out


@pytest.mark.parametrize("edited", [1, 3])
def test_an_edit_with_every_later_hash_recomputed_is_detected_with_the_key(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], edited: int
) -> None:
    write_entries(cli_env, 5, key=KEY)
    rewrite_from(cli_env, edited)

    code, out = verify(monkeypatch, capsys)
    assert code == 1, out
    assert "audit log BROKEN" in out and "rewritten" in out
    if edited == 1:  # rewritten from the start, it is a valid plain SHA-256 chain: the key is what catches it
        code, out = verify(monkeypatch, capsys, key=None)
        assert code == 0, out


def test_an_edit_of_the_signed_content_or_a_column_is_detected(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(cli_env, 3, key=KEY)
    with as_database_writer(cli_env) as conn, conn.begin():  # the column shown by /audit, not the signed text
        conn.execute(text("UPDATE audit_entry SET details = :d WHERE seq = 2"), {"d": json.dumps({"reason": "x"})})
    code, out = verify(monkeypatch, capsys)
    assert code == 1 and "entry #2 was changed after it was written (its details is not what was signed)" in out


def test_a_deleted_tail_with_the_head_rewound_is_detected_with_an_anchor(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(cli_env, 6, key=KEY)
    anchor = anchor_at(cli_env, 5)  # posted in audit.anchor_channel earlier
    truncate_to(cli_env, 3)

    code, out = verify(monkeypatch, capsys)
    assert code == 0, out  # the database alone cannot tell: a shorter chain is still a chain
    code, out = verify(monkeypatch, capsys, "--anchor", anchor)
    assert code == 1, out
    assert "the chain ends at entry #3, but an anchor posted outside the database says entry #5 existed" in out


def test_a_rewritten_chain_does_not_hold_the_anchor(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(cli_env, 5, key=None)  # no key at all: the anchor alone catches the rewrite
    anchor = anchor_at(cli_env, 4)
    rewrite_from(cli_env, 2)
    code, out = verify(monkeypatch, capsys, "--anchor", anchor, key=None)
    assert code == 1, out
    assert "entry #4 is not the one anchored outside the database" in out


def test_the_wrong_key_or_no_key_is_a_clear_message_not_a_tampering_report(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(cli_env, 3, key=KEY)
    code, out = verify(monkeypatch, capsys, key=OTHER_KEY)
    assert code == 2, out
    assert "GUARDRAIL_AUDIT_KEY is not the key this log was signed with" in out
    assert "Traceback" not in out and KEY not in out and OTHER_KEY not in out
    code, out = verify(monkeypatch, capsys, key=None)
    assert code == 2, out
    assert "entries from #1 on are signed with GUARDRAIL_AUDIT_KEY: set it to verify them" in out
    code, out = verify(monkeypatch, capsys, key="short")
    assert code == 2 and "GUARDRAIL_AUDIT_KEY: Value error, must be at least 16 characters" in out


def test_entries_written_before_the_upgrade_stay_verifiable_and_the_key_covers_what_follows(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a database at the original schema, with entries as the original code wrote them
    command.upgrade(migrate.alembic_config(database_url), "0001_core")
    prev, at = "0" * 64, datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with as_database_writer(database_url) as conn, conn.begin():
        for seq in (1, 2):
            digest = entry_hash(
                seq=seq, at=at, actor="U0CAROL", action="note", subject=f"n{seq}", details_json="{}", prev_hash=prev
            )
            conn.execute(
                text(
                    "INSERT INTO audit_entry (seq, at, actor, action, subject, details, prev_hash, hash) "
                    "VALUES (:s, :at, 'U0CAROL', 'note', :sub, '{}', :p, :h)"
                ),
                {"s": seq, "at": at, "sub": f"n{seq}", "p": prev, "h": digest},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET seq = 2, hash = :h WHERE id = 1"), {"h": prev})
    with cli_environment(database_url, tmp_path, monkeypatch):
        write_entries(database_url, 2, key=KEY, start=2)  # after the upgrade, with the key
        code, out = verify(monkeypatch, capsys)
        assert code == 0, out
        assert "4 entries verified (#3 to #4 signed with GUARDRAIL_AUDIT_KEY; #1 to #2 SHA-256 only)" in out
        code, out = verify(monkeypatch, capsys, key=None)
        assert code == 2 and "entries from #3 on are signed" in out


def test_a_bad_anchor_is_a_usage_error(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("12", "x:abc", "3:" + "z" * 64, "0:" + "a" * 64):
        code, out = verify(monkeypatch, capsys, "--anchor", bad)
        assert code == 2 and "--anchor" in out and "Traceback" not in out, (bad, out)


def resign_with(url: str, seq: int, key: str) -> None:
    """Edit entry `seq` (the newest) and sign it with `key`: what someone holding a leaked old key can do."""
    with as_database_writer(url) as conn, conn.begin():
        row = conn.execute(
            text("SELECT seq, at, action, subject, details, prev_hash FROM audit_entry WHERE seq = :s"), {"s": seq}
        ).one()
        at = datetime.fromisoformat(row.at) if isinstance(row.at, str) else row.at
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        signer = AuditKey(key.encode())
        content = entry_content(
            seq=seq,
            at=at,
            actor="U0MALLORY",
            action=row.action,
            subject=row.subject,
            details_json=row.details,
            prev_hash=row.prev_hash,
            key_id=signer.id,
        )
        digest = signer.sign(content)
        conn.execute(
            text("UPDATE audit_entry SET actor = 'U0MALLORY', hash = :h, content = :c WHERE seq = :s"),
            {"h": digest, "c": content, "s": seq},
        )
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": digest})


def test_a_rotated_key_verifies_with_the_old_one_in_previous_and_the_old_key_cannot_rewrite_after_it(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(cli_env, 3, key=KEY)
    write_entries(cli_env, 2, key=OTHER_KEY, start=3)  # the key was changed
    code, out = verify(monkeypatch, capsys, key=OTHER_KEY)
    assert code == 2, out
    assert "is not the key this log was signed with" in out and "GUARDRAIL_AUDIT_KEY_PREVIOUS" in out

    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY_PREVIOUS", KEY)
    code, out = verify(monkeypatch, capsys, key=OTHER_KEY)
    assert code == 0, out
    assert "audit log intact: 5 entries verified (#1 to #5 signed with GUARDRAIL_AUDIT_KEY)" in out
    assert KEY not in out and OTHER_KEY not in out

    resign_with(cli_env, 5, KEY)  # the old key leaked: it signs an edit after the rotation
    code, out = verify(monkeypatch, capsys, key=OTHER_KEY)
    assert code == 1, out
    assert "entry #5 is signed with an older key than the entries before it" in out
