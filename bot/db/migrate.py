"""Alembic, driven from code: `guardrail migrate` and the start-up schema check."""

from __future__ import annotations

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


def pending(database_url: str, *, connect_timeout: float | None = None) -> set[str]:
    """Every revision the code has that the database does not (empty when up to date).

    `connect_timeout` (PostgreSQL) bounds the connection, so a black-holed database fails the
    caller quickly instead of hanging it."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    target = sync_url(database_url)
    connect_args = ({"connect_timeout": max(2, round(connect_timeout))}
                    if connect_timeout is not None and target.get_backend_name() == "postgresql" else {})
    engine = create_engine(target, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    everything = {rev.revision for rev in script.walk_revisions()}
    applied = {rev.revision for rev in script.iterate_revisions(current, "base")} if current else set()
    return everything - applied
