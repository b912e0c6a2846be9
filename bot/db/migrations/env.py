"""Alembic environment: runs migrations with a blocking driver (psycopg or sqlite3)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None

engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
