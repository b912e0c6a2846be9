"""Backups as docs/operations.md prescribes them, taken while guardrail is writing, then verified.

SQLite: the file alone (`cp`) misses what is still in the write-ahead log; the online backup
(`.backup`, i.e. the backup API) and `VACUUM INTO` include it. PostgreSQL: `pg_dump` and
`pg_restore` round-trip the audit chain. Each backup must pass `guardrail audit verify`.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from bot.clock import SystemClock
from bot.db import migrate
from bot.db.engine import Database
from bot.services.audit import AuditLog
from tests.support.cli import run
from tests.support.databases import _libpq, postgres_base_url, postgres_schema_url

ENTRIES = 11


def audit_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_entry").fetchone()[0])


@pytest.fixture
async def serving_sqlite(tmp_path: Path) -> AsyncIterator[Path]:
    """A migrated SQLite database with ENTRIES audit entries written by a still-open guardrail connection."""
    path = tmp_path / "guardrail.db"
    migrate.upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    log = AuditLog(db, SystemClock())
    for i in range(ENTRIES):
        await log.record(actor="system", action="test.append", subject=f"entry-{i}", details={"i": i})
    try:
        yield path  # the connection stays open: the entries are still in guardrail.db-wal
    finally:
        await db.dispose()


def verify(url: str) -> str:
    result = run("audit", "verify", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_cp_of_a_serving_sqlite_file_misses_what_the_online_backup_keeps(
    serving_sqlite: Path, tmp_path: Path
) -> None:
    copied = tmp_path / "copied.db"
    shutil.copyfile(serving_sqlite, copied)
    assert audit_rows(copied) < ENTRIES  # why the docs say never `cp`

    backup = tmp_path / "backup.db"
    with sqlite3.connect(serving_sqlite) as source, sqlite3.connect(backup) as target:
        source.backup(target)  # what the sqlite3 shell's `.backup` does
    vacuumed = tmp_path / "vacuumed.db"
    with sqlite3.connect(serving_sqlite) as source:
        source.execute("VACUUM INTO ?", (str(vacuumed),))

    for taken in (backup, vacuumed):
        assert audit_rows(taken) == ENTRIES
        assert f"{ENTRIES} entries verified" in await asyncio.to_thread(verify, f"sqlite:///{taken}")


@pytest.fixture
def restore_database() -> Iterator[str]:
    """An empty PostgreSQL database to restore into, dropped afterwards."""
    name = f"restore_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(_libpq(postgres_base_url()), autocommit=True, connect_timeout=3)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _libpq(postgres_base_url()).rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


async def test_pg_dump_and_pg_restore_round_trip_the_audit_chain(tmp_path: Path, restore_database: str) -> None:
    with postgres_schema_url() as url:
        migrate.upgrade(url)
        db = Database(url)
        log = AuditLog(db, SystemClock())
        for i in range(ENTRIES):
            await log.record(actor="system", action="test.append", subject=f"entry-{i}", details={"i": i})
        schema = url.split("search_path%3D", 1)[1]
        dump = tmp_path / "guardrail.dump"
        try:
            # While guardrail still holds its connection: pg_dump takes a consistent snapshot.
            dumped = await asyncio.to_thread(
                subprocess.run,
                ["pg_dump", "--format=custom", f"--schema={schema}", f"--file={dump}", _libpq(postgres_base_url())],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            await db.dispose()
    assert dumped.returncode == 0, dumped.stderr
    restored = await asyncio.to_thread(
        subprocess.run,
        ["pg_restore", "--no-owner", f"--dbname={restore_database}", str(dump)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restored.returncode == 0, restored.stderr
    url = f"{restore_database}?options={quote(f'-csearch_path={schema}')}"
    assert f"{ENTRIES} entries verified" in await asyncio.to_thread(verify, url)
