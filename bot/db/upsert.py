"""Insert-or-ignore, the building block of every exactly-once claim, on SQLite and PostgreSQL.

Both dialects spell it `INSERT … ON CONFLICT DO NOTHING`, but SQLAlchemy needs the dialect's own
`insert`. Whether this caller inserted is read from RETURNING, never from rowcount: psycopg's async
cursor reports -1 for a skipped ON CONFLICT row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignoring_conflict(
    session: AsyncSession,
    table: Any,
    values: Mapping[str, Any],
    *,
    conflict_on: Sequence[str] | None = None,
    returning: Any = None,
) -> Any:
    """Insert `values` unless a row conflicts; the RETURNING value when inserted, else None.

    Without `returning`, the first primary-key column is returned.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict_on)
    column = returning if returning is not None else next(iter(table.__table__.primary_key.columns))
    row = (await session.execute(statement.returning(column))).first()
    return None if row is None else row[0]
