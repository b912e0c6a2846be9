"""Freeze tables and the few queries that need SQL: windows, deploys, exemptions, announcement claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, select
from sqlmodel import Field, SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict


class FreezeWindowRecord(SQLModel, table=True):
    """One freeze window. `next_event_at` is when the scheduler next has something to announce."""

    __tablename__ = "freeze_window"
    __table_args__ = (Index("ix_freeze_window_env_span", "environment", "ends_at", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    cancelled_by: str | None = Field(default=None, max_length=100)
    recurring_key: str | None = Field(default=None, max_length=200, unique=True)
    next_event_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True,
                                                                           index=True))


class DeployRecord(SQLModel, table=True):
    """A deploy CI reported through `POST /api/v1/deploys`."""

    __tablename__ = "freeze_deploy"
    __table_args__ = (Index("ix_freeze_deploy_env_service", "environment", "service", "id"),
                      Index("ux_freeze_deploy_idempotency_key", "idempotency_key", unique=True))

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    service: str = Field(max_length=100)
    version: str = Field(max_length=200)
    actor: str = Field(max_length=100)
    url: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    exemption_id: int | None = Field(default=None)
    idempotency_key: str | None = Field(default=None, max_length=200)  # CI's `Idempotency-Key` header
    request_digest: str | None = Field(default=None, max_length=64)    # sha256 of what was recorded


class FreezeExemptionRecord(SQLModel, table=True):
    """A break-glass request: one service may deploy during window `window_id` once approved."""

    __tablename__ = "freeze_exemption"

    id: int | None = Field(default=None, primary_key=True)
    window_id: int = Field(index=True)
    service: str = Field(max_length=100)
    duration_seconds: int
    reason: str = Field(max_length=500)
    requested_by: str = Field(max_length=100)
    requested_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(max_length=20, index=True)  # pending, approved, refused, expired
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class FreezeAnnouncementRecord(SQLModel, table=True):
    """An announcement claimed by one replica before it is posted: (subject, kind) exactly once."""

    __tablename__ = "freeze_announcement"

    key: str = Field(primary_key=True, max_length=200)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


async def claim_announcement(session: AsyncSession, key: str, at: datetime) -> bool:
    """Insert-or-ignore the claim; True only for the one caller (of any replica) that inserted it."""
    return await insert_ignoring_conflict(session, FreezeAnnouncementRecord, {"key": key[:200], "at": at}) is not None


async def insert_recurring(session: AsyncSession, values: dict[str, object]) -> int | None:
    """Insert a materialized recurring occurrence unless its `recurring_key` exists; its id if inserted."""
    inserted = await insert_ignoring_conflict(session, FreezeWindowRecord, values, conflict_on=["recurring_key"],
                                              returning=FreezeWindowRecord.id)
    return int(inserted) if inserted is not None else None


async def insert_deploy(session: AsyncSession, *, values: dict[str, object]) -> int | None:
    """Insert a deploy; its id, or None when its `idempotency_key` was recorded already (by anyone)."""
    inserted = await insert_ignoring_conflict(session, DeployRecord, values, conflict_on=["idempotency_key"],
                                              returning=DeployRecord.id)
    return int(inserted) if inserted is not None else None


async def deploy_by_key(session: AsyncSession, *, key: str) -> DeployRecord | None:
    """The deploy recorded with this `Idempotency-Key`, if any."""
    rows = await session.execute(select(DeployRecord).where(col(DeployRecord.idempotency_key) == key))
    return rows.scalars().first()
