"""Claiming a Slack delivery exactly once, across retries and replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.tables import ProcessedDelivery


async def claim(session: AsyncSession, key: str, at: datetime) -> bool:
    """Record `key`; True if this caller is the first to claim it."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (insert(ProcessedDelivery).values(key=key[:200], at=at).on_conflict_do_nothing()
                 .returning(col(ProcessedDelivery.key)))
    # RETURNING, not rowcount: psycopg's async cursor reports rowcount -1 for INSERT … ON CONFLICT,
    # which made every event look like a redelivery on PostgreSQL.
    result = await session.execute(statement)
    return result.first() is not None


async def forget_before(session: AsyncSession, cutoff: datetime) -> None:
    """Slack stops redelivering after about an hour; older keys are dead weight."""
    await session.execute(delete(ProcessedDelivery).where(col(ProcessedDelivery.at) < cutoff))
