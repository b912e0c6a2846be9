"""Alembic, driven from code: `guardrail migrate` and the start-up schema check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from bot.db.urls import sync_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Stored as a rendered string with the password: alembic needs it to connect. '%' must be
    # escaped for configparser.
    url = sync_url(database_url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the latest schema (every head: features add their own branches)."""
    command.upgrade(alembic_config(database_url), "heads")


@dataclass(frozen=True)
class SchemaState:
    """How the database's schema compares with this code's migrations."""

    pending: frozenset[str]  # revisions this code has and the database lacks: migrate first
    newer: frozenset[str]  # revisions the database has and this code does not know: a newer release migrated it


def schema_state(
    database_url: str, *, connect_timeout: float | None = None, statement_timeout: float | None = None
) -> SchemaState:
    """Compare the database's alembic heads with this code's revisions.

    A head this code does not know means a newer guardrail already migrated the database (a rolling
    upgrade, or a rollback of the app). Migrations only ever add, and every release carries all
    earlier revisions, so everything this code knows is then taken as applied: the previous release
    keeps running against the new schema instead of refusing to start.

    `connect_timeout` and `statement_timeout` (PostgreSQL, seconds) bound the connection and the
    query, so a black-holed or stuck database fails the caller instead of hanging it. (A query
    that never reaches the server is bounded by neither: callers with a deadline run this in a
    thread they stop waiting for, as `freeze check` does.)"""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    target = sync_url(database_url)
    connect_args: dict[str, object] = {}
    if target.get_backend_name() == "postgresql":
        if connect_timeout is not None:
            connect_args["connect_timeout"] = max(2, round(connect_timeout))  # libpq: whole seconds, ≥ 2
        if statement_timeout is not None:
            connect_args["options"] = " ".join(
                filter(
                    None,
                    [
                        str(target.query.get("options", "")),  # connect_args replace the URL's own options
                        f"-c statement_timeout={max(1, round(statement_timeout * 1000))}",
                    ],
                )
            )
    engine = create_engine(target, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    everything = {rev.revision for rev in script.walk_revisions()}
    newer = frozenset(head for head in current if head not in everything)
    if newer:
        return SchemaState(pending=frozenset(), newer=newer)
    applied = {rev.revision for rev in script.iterate_revisions(current, "base")} if current else set()
    return SchemaState(pending=frozenset(everything - applied), newer=frozenset())


def pending(database_url: str, *, connect_timeout: float | None = None) -> set[str]:
    """Every revision the code has that the database does not (empty when up to date)."""
    return set(schema_state(database_url, connect_timeout=connect_timeout).pending)
