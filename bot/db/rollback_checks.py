"""Rollback checks: each run's result, and the claim that makes the daily run happen on one replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict


class RollbackCheckRecord(SQLModel, table=True):
    """One run of the rollback check: `daily:<date>` (claimed once per day) or `run:<id>` (the CLI)."""

    __tablename__ = "rollback_check"

    key: str = Field(primary_key=True, max_length=60)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True))
    ok: bool | None = Field(default=None)
    results: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON list


async def claim_run(session: AsyncSession, key: str, *, at: datetime) -> bool:
    """True for the one caller that inserted `key` (the daily run's claim)."""
    inserted = await insert_ignoring_conflict(session, RollbackCheckRecord, {"key": key, "started_at": at})
    return inserted is not None


async def finish_run(session: AsyncSession, key: str, *, at: datetime, ok: bool, results: str) -> None:
    await session.execute(
        update(RollbackCheckRecord)
        .where(col(RollbackCheckRecord.key) == key)
        .values(finished_at=at, ok=ok, results=results)
    )


async def last_finished(session: AsyncSession) -> RollbackCheckRecord | None:
    rows = await session.execute(
        select(RollbackCheckRecord)
        .where(col(RollbackCheckRecord.finished_at).is_not(None))
        .order_by(col(RollbackCheckRecord.finished_at).desc())
        .limit(1)
    )
    return rows.scalars().first()
