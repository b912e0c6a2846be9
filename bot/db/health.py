"""Watched services' announced state, shared by every replica: the claim that makes each change
announced exactly once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict

UNKNOWN = "unknown"


class HealthWatchState(SQLModel, table=True):
    """The last state announced (or silently established) for one watched service."""

    __tablename__ = "health_watch"

    service: str = Field(primary_key=True, max_length=100)
    state: str = Field(max_length=10)
    since: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


async def current_state(session: AsyncSession, service: str, at: datetime) -> str:
    """The recorded state, creating the row as `unknown` the first time a service is watched."""
    await insert_ignoring_conflict(session, HealthWatchState, {"service": service, "state": UNKNOWN, "since": at})
    row = await session.execute(select(col(HealthWatchState.state)).where(col(HealthWatchState.service) == service))
    return str(row.scalar_one())


async def claim_change(session: AsyncSession, service: str, *, old: str, new: str, at: datetime) -> bool:
    """Move `service` from `old` to `new`; True only for the one caller whose update applied.

    A compare-and-set: a replica that read the same `old` concurrently updates nothing (PostgreSQL
    re-checks the WHERE after the first writer commits; SQLite serializes writers).
    """
    result = await session.execute(
        update(HealthWatchState)
        .where(col(HealthWatchState.service) == service, col(HealthWatchState.state) == old)
        .values(state=new, since=at)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
