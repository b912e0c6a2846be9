"""Change tables: every deploy, release and rollout, and the watch after it.

`change` is one row per change, unique by `key` (`deploy:<id>`, `heroku:<env>:<app>:v<n>`,
`kubernetes:<env>:<ns>/<name>:r<n>`): recording is an insert-or-ignore, so of two replicas (or
the API and the deploys sweep) that see the same change exactly one inserts it, and only that one
audits it and starts its watch. The watch's state lives on the row: a replica holds it by lease
(`lease_owner`, `lease_until`, renewed every round), and every verdict or alarm is a conditional
UPDATE on `watch_status`, so it is said once. `change_cursor` remembers, per polled source, the
newest version already seen, so a restart does not take a source's whole history for new changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.freeze import DeployRecord
from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict

Session = AsyncSession

WATCHING = "watching"
HEALTHY = "healthy"
ALERTED = "alerted"
UNWATCHED = "unwatched"  # seen on a source's first poll, or older than the watch: listed, not watched


class ChangeRecord(SQLModel, table=True):
    __tablename__ = "change"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    environment: str = Field(max_length=40)
    source: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    service: str = Field(max_length=100, index=True)
    services: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of affected services
    version: str = Field(max_length=100)
    description: str | None = Field(default=None, max_length=300)
    actor: str = Field(max_length=200)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    watch_status: str = Field(max_length=20, index=True)
    watch_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    watch_state: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    message_outbox_id: int | None = Field(default=None)
    alert_outbox_id: int | None = Field(default=None)
    alerted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    alert_service: str | None = Field(default=None, max_length=100)
    rollback_by: str | None = Field(default=None, max_length=100)
    rollback_incident: int | None = Field(default=None)
    auto_rollback_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    auto_cancelled_by: str | None = Field(default=None, max_length=100)
    dismissed_by: str | None = Field(default=None, max_length=100)


class ChangeCursor(SQLModel, table=True):
    __tablename__ = "change_cursor"

    source: str = Field(primary_key=True, max_length=300)
    version: int
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


async def insert_change(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new row's id, or None when a change with this key was recorded already."""
    inserted = await insert_ignoring_conflict(
        session, ChangeRecord, values, conflict_on=["key"], returning=col(ChangeRecord.id)
    )
    return None if inserted is None else int(inserted)


async def get(session: AsyncSession, change_id: int) -> ChangeRecord | None:
    return await session.get(ChangeRecord, change_id)


async def since(session: AsyncSession, *, cutoff: datetime, limit: int = 200) -> Sequence[ChangeRecord]:
    """Changes at or after `cutoff`, newest first."""
    rows = await session.execute(
        select(ChangeRecord)
        .where(col(ChangeRecord.at) >= cutoff)
        .order_by(col(ChangeRecord.at).desc(), col(ChangeRecord.id).desc())
        .limit(limit)
    )
    return rows.scalars().all()


async def claim_watches(
    session: AsyncSession, *, owner: str, now: datetime, lease_until: datetime
) -> Sequence[ChangeRecord]:
    """Lease every watch that is free (or already ours) and return them; another replica's live lease
    is left alone, so one replica drives each watch (and posts its rounds) at a time."""
    free = and_(
        col(ChangeRecord.watch_status) == WATCHING,
        or_(
            col(ChangeRecord.lease_until).is_(None),
            col(ChangeRecord.lease_until) < now,
            col(ChangeRecord.lease_owner) == owner,
        ),
    )
    await session.execute(update(ChangeRecord).where(free).values(lease_owner=owner, lease_until=lease_until))
    rows = await session.execute(
        select(ChangeRecord)
        .where(
            col(ChangeRecord.watch_status) == WATCHING,
            col(ChangeRecord.lease_owner) == owner,
            col(ChangeRecord.lease_until) == lease_until,
        )
        .order_by(col(ChangeRecord.id))
    )
    return rows.scalars().all()


async def save_round(session: AsyncSession, *, change_id: int, owner: str, state: str) -> bool:
    """Store a round's state; False when the lease was lost (another replica took the watch)."""
    result = await session.execute(
        update(ChangeRecord)
        .where(
            col(ChangeRecord.id) == change_id,
            col(ChangeRecord.lease_owner) == owner,
            col(ChangeRecord.watch_status) == WATCHING,
        )
        .values(watch_state=state)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def finish_watch(
    session: AsyncSession, *, change_id: int, status: str, state: str, values: dict[str, Any] | None = None
) -> bool:
    """Move a watch from watching to `status` (healthy or alerted); True only for the one caller."""
    result = await session.execute(
        update(ChangeRecord)
        .where(col(ChangeRecord.id) == change_id, col(ChangeRecord.watch_status) == WATCHING)
        .values(watch_status=status, watch_state=state, lease_owner=None, lease_until=None, **(values or {}))
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def set_values(session: AsyncSession, *, change_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(ChangeRecord).where(col(ChangeRecord.id) == change_id).values(**values))


async def due_auto_rollbacks(session: AsyncSession, *, now: datetime) -> Sequence[ChangeRecord]:
    rows = await session.execute(
        select(ChangeRecord).where(
            col(ChangeRecord.auto_rollback_at).is_not(None),
            col(ChangeRecord.auto_rollback_at) <= now,
            col(ChangeRecord.auto_cancelled_by).is_(None),
            col(ChangeRecord.rollback_by).is_(None),
            col(ChangeRecord.dismissed_by).is_(None),
        )
    )
    return rows.scalars().all()


async def cursor(session: AsyncSession, source: str) -> int | None:
    row = await session.get(ChangeCursor, source)
    return None if row is None else row.version


async def advance_cursor(session: AsyncSession, source: str, *, version: int, at: datetime) -> None:
    """Move the cursor forward (never back: a slower replica's older answer must not rewind it)."""
    inserted = await insert_ignoring_conflict(
        session, ChangeCursor, {"source": source, "version": version, "updated_at": at}
    )
    if inserted is None:
        await session.execute(
            update(ChangeCursor)
            .where(col(ChangeCursor.source) == source, col(ChangeCursor.version) < version)
            .values(version=version, updated_at=at)
        )


async def deploys_since(session: AsyncSession, *, cutoff: datetime) -> Sequence[DeployRecord]:
    """Deploys recorded through the API at or after `cutoff` (the sweep that makes each one a change)."""
    rows = await session.execute(
        select(DeployRecord).where(col(DeployRecord.at) >= cutoff).order_by(col(DeployRecord.id))
    )
    return rows.scalars().all()


async def claim_rollback(session: AsyncSession, *, change_id: int, actor: str, automatic: bool) -> bool:
    """Take the change's rollback for `actor`: True only for the first press (or the countdown)."""
    conditions = [col(ChangeRecord.id) == change_id, col(ChangeRecord.rollback_by).is_(None)]
    if automatic:
        conditions += [col(ChangeRecord.auto_cancelled_by).is_(None), col(ChangeRecord.dismissed_by).is_(None)]
    result = await session.execute(update(ChangeRecord).where(*conditions).values(rollback_by=actor))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def release_rollback(session: AsyncSession, *, change_id: int, actor: str) -> None:
    await session.execute(
        update(ChangeRecord)
        .where(col(ChangeRecord.id) == change_id, col(ChangeRecord.rollback_by) == actor)
        .values(rollback_by=None)
    )


async def cancel_countdown(session: AsyncSession, *, change_id: int, actor: str) -> bool:
    """Stop an automatic rollback that has not started; True only for the one caller that stopped it."""
    result = await session.execute(
        update(ChangeRecord)
        .where(
            col(ChangeRecord.id) == change_id,
            col(ChangeRecord.auto_rollback_at).is_not(None),
            col(ChangeRecord.auto_cancelled_by).is_(None),
            col(ChangeRecord.rollback_by).is_(None),
        )
        .values(auto_cancelled_by=actor)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def dismiss(session: AsyncSession, *, change_id: int, actor: str) -> bool:
    """ "Not the deploy": True only for the first press."""
    result = await session.execute(
        update(ChangeRecord)
        .where(col(ChangeRecord.id) == change_id, col(ChangeRecord.dismissed_by).is_(None))
        .values(dismissed_by=actor)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
