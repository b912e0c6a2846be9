"""Idempotency keys: claimed before the work they guard, resolved to what the work created."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict


class IdempotencyKeyRecord(SQLModel, table=True):
    """One key of one caller (`scope`, e.g. `freeze:api:release-bot`); `result_id` is NULL while the
    request that claimed it is still at work (or stopped before it finished)."""

    __tablename__ = "idempotency_key"

    scope: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=200)
    digest: str = Field(max_length=64)  # sha256 of the request: the same key with another request is refused
    result_id: int | None = Field(default=None)
    claimed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


async def claim(session: AsyncSession, *, scope: str, key: str, digest: str, at: datetime) -> bool:
    """True for the one caller that inserted the key."""
    inserted = await insert_ignoring_conflict(
        session, IdempotencyKeyRecord, {"scope": scope, "key": key, "digest": digest, "claimed_at": at}
    )
    return inserted is not None


async def find(session: AsyncSession, *, scope: str, key: str) -> IdempotencyKeyRecord | None:
    rows = await session.execute(
        select(IdempotencyKeyRecord).where(
            col(IdempotencyKeyRecord.scope) == scope, col(IdempotencyKeyRecord.key) == key
        )
    )
    return rows.scalars().first()


async def resolve(session: AsyncSession, *, scope: str, key: str, result_id: int) -> None:
    await session.execute(
        update(IdempotencyKeyRecord)
        .where(col(IdempotencyKeyRecord.scope) == scope, col(IdempotencyKeyRecord.key) == key)
        .values(result_id=result_id)
    )


async def release(session: AsyncSession, *, scope: str, key: str) -> None:
    """Forget an unresolved claim (its work was refused or failed), so the key can be used again."""
    await session.execute(
        delete(IdempotencyKeyRecord).where(
            col(IdempotencyKeyRecord.scope) == scope,
            col(IdempotencyKeyRecord.key) == key,
            col(IdempotencyKeyRecord.result_id).is_(None),
        )
    )
