"""A database migrated by a newer guardrail still serves the previous release (rolling upgrades, app rollbacks)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot import cli
from bot.db import migrate
from bot.db.urls import sync_url


def _replace_head(url: str, old: str, new: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE alembic_version SET version_num = :new WHERE version_num = :old"), {"new": new, "old": old}
        )
    engine.dispose()


def test_an_unknown_newer_head_is_not_an_error_and_nothing_is_pending(database_url: str) -> None:
    migrate.upgrade(database_url)
    head = sorted(migrate.schema_state(database_url).pending | {"0008_audit_hmac"})[-1]
    _replace_head(database_url, head, "0099_from_a_newer_release")

    state = migrate.schema_state(database_url)

    assert state.newer == {"0099_from_a_newer_release"}
    assert state.pending == frozenset()


def test_the_cli_runs_against_a_newer_schema_and_says_so(
    database_url: str,
    tmp_path: Path,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate.upgrade(database_url)
    _replace_head(database_url, "0008_audit_hmac", "0099_from_a_newer_release")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GUARDRAIL_CONFIG", str(config_dir))
    monkeypatch.chdir(tmp_path)  # no .env from the checkout

    with caplog.at_level(logging.WARNING):
        code = cli.main(["audit", "verify"])

    assert code == 0, capsys.readouterr()
    assert "migrated by a newer guardrail (0099_from_a_newer_release)" in caplog.text


def test_a_missing_revision_still_refuses(
    database_url: str,
    tmp_path: Path,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate.upgrade(database_url)
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0008_audit_hmac'"))
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GUARDRAIL_CONFIG", str(config_dir))
    monkeypatch.chdir(tmp_path)

    assert cli.main(["audit", "verify"]) == 2
    assert "run `guardrail migrate` first" in capsys.readouterr().err


def test_a_stuck_schema_query_on_postgresql_is_cut_by_statement_timeout(postgres_url: str) -> None:
    """Another session holds alembic_version locked (a migration stuck mid-way, say): the check fails
    after its statement_timeout instead of waiting for the lock."""
    migrate.upgrade(postgres_url)
    engine = create_engine(sync_url(postgres_url))
    pool = ThreadPoolExecutor(1)
    try:
        with engine.begin() as locker:
            locker.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
            check = pool.submit(migrate.schema_state, postgres_url, connect_timeout=2, statement_timeout=0.5)
            try:
                error = check.exception(timeout=5)
            except TimeoutError:
                error = None  # still waiting for the lock: released when this block ends
        assert isinstance(error, OperationalError) and "statement timeout" in str(error), error
    finally:
        pool.shutdown()
        engine.dispose()
