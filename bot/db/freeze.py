"""Freeze tables and every freeze query (keyword-only; the services call these and name no SQL types)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Column, Index, Integer, Text, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict

Session = AsyncSession  # what services name in annotations, so they import no SQL library


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
    next_event_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True))


class WindowFields(Protocol):
    """What a window read is: a `FreezeWindowRecord`, or a plain row of its columns (the snapshot
    reads, which skip building ORM objects: thousands of windows are re-read every second)."""

    @property
    def id(self) -> int | None: ...
    @property
    def environment(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def cancelled_at(self) -> datetime | None: ...
    @property
    def cancelled_by(self) -> str | None: ...
    @property
    def recurring_key(self) -> str | None: ...


def _columns(record: type[SQLModel]) -> list[Any]:
    return list(record.__table__.columns)  # type: ignore[attr-defined]


class DeployRecord(SQLModel, table=True):
    """A deploy CI reported through `POST /api/v1/deploys`."""

    __tablename__ = "freeze_deploy"
    __table_args__ = (
        Index("ix_freeze_deploy_env_service", "environment", "service", "id"),
        Index("ux_freeze_deploy_idempotency_key", "idempotency_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    service: str = Field(max_length=100)
    version: str = Field(max_length=200)
    actor: str = Field(max_length=100)
    url: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    exemption_id: int | None = Field(default=None)
    idempotency_key: str | None = Field(default=None, max_length=200)  # CI's `Idempotency-Key` header
    request_digest: str | None = Field(default=None, max_length=64)  # sha256 of what was recorded


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
    """An announcement claimed by one replica: (subject, kind) once. The claim's transaction also
    writes the notice to the outbox, so the claim is done at once (`posted_at` = `at`).

    Before the outbox, `posted_at` stayed empty until Slack took it and `notice` (JSON) was kept for
    retries; such leftovers are handed to the outbox by the ticker.
    """

    __tablename__ = "freeze_announcement"

    key: str = Field(primary_key=True, max_length=200)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    posted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    notice: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))


async def claim_announcement(session: AsyncSession, *, key: str, at: datetime, notice: str | None = None) -> bool:
    """Insert-or-ignore the claim; True only for the one caller (of any replica) that inserted it.

    With `notice` (what to post, as JSON) the claim waits for `mark_posted`; without, it is done.
    """
    values = {"key": key[:200], "at": at, "notice": notice, "attempts": 1, "posted_at": None if notice else at}
    return await insert_ignoring_conflict(session, FreezeAnnouncementRecord, values) is not None


async def claim_announcements(session: AsyncSession, *, keys: Sequence[str], at: datetime) -> set[str]:
    """Claim many (done at once: their notices go to the outbox in the same transaction) with one
    multi-row insert-or-ignore; the keys this caller inserted."""
    if not keys:
        return set()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = [{"key": key[:200], "at": at, "notice": None, "attempts": 1, "posted_at": at} for key in keys]
    statement = (
        insert(FreezeAnnouncementRecord)
        .values(values)
        .on_conflict_do_nothing()
        .returning(col(FreezeAnnouncementRecord.key))
    )
    return {str(key) for key in (await session.execute(statement)).scalars().all()}


async def mark_posted(session: AsyncSession, *, keys: Sequence[str], at: datetime) -> None:
    if keys:
        await session.execute(
            update(FreezeAnnouncementRecord)
            .where(col(FreezeAnnouncementRecord.key).in_([k[:200] for k in keys]))
            .values(posted_at=at)
        )


async def unposted_announcements(
    session: AsyncSession, *, claimed_before: datetime, max_attempts: int, limit: int
) -> Sequence[FreezeAnnouncementRecord]:
    """Claims that were never marked posted, last taken before `claimed_before`, oldest first."""
    rows = await session.execute(
        select(FreezeAnnouncementRecord)
        .where(
            col(FreezeAnnouncementRecord.posted_at).is_(None),
            col(FreezeAnnouncementRecord.notice).is_not(None),
            col(FreezeAnnouncementRecord.at) <= claimed_before,
            col(FreezeAnnouncementRecord.attempts) < max_attempts,
        )
        .order_by(col(FreezeAnnouncementRecord.at))
        .limit(limit)
    )
    return rows.scalars().all()


async def reclaim_announcement(session: AsyncSession, *, key: str, seen_at: datetime, at: datetime) -> bool:
    """Take an unposted claim again (compare-and-set on `at`): True for the one replica that did."""
    rows = await session.execute(
        update(FreezeAnnouncementRecord)
        .where(
            col(FreezeAnnouncementRecord.key) == key,
            col(FreezeAnnouncementRecord.at) == seen_at,
            col(FreezeAnnouncementRecord.posted_at).is_(None),
        )
        .values(at=at, attempts=FreezeAnnouncementRecord.attempts + 1)
        .returning(col(FreezeAnnouncementRecord.key))
    )
    return rows.first() is not None


async def insert_recurring(session: AsyncSession, *, values: dict[str, object]) -> int | None:
    """Insert a materialized recurring occurrence unless its `recurring_key` exists; its id if inserted."""
    inserted = await insert_ignoring_conflict(
        session, FreezeWindowRecord, values, conflict_on=["recurring_key"], returning=FreezeWindowRecord.id
    )
    return int(inserted) if inserted is not None else None


async def insert_deploy(session: AsyncSession, *, values: dict[str, object]) -> int | None:
    """Insert a deploy; its id, or None when its `idempotency_key` was recorded already (by anyone)."""
    inserted = await insert_ignoring_conflict(
        session, DeployRecord, values, conflict_on=["idempotency_key"], returning=DeployRecord.id
    )
    return int(inserted) if inserted is not None else None


async def deploy_by_key(session: AsyncSession, *, key: str) -> DeployRecord | None:
    """The deploy recorded with this `Idempotency-Key`, if any."""
    rows = await session.execute(select(DeployRecord).where(col(DeployRecord.idempotency_key) == key))
    return rows.scalars().first()


# --- windows -------------------------------------------------------------------------------------


async def window_by_id(session: AsyncSession, *, window_id: int) -> FreezeWindowRecord | None:
    return await session.get(FreezeWindowRecord, window_id)


async def locked_window(session: AsyncSession, *, window_id: int) -> FreezeWindowRecord | None:
    """The window, locked for this transaction (FOR UPDATE on PostgreSQL) so writers take turns."""
    rows = await session.execute(
        select(FreezeWindowRecord).where(col(FreezeWindowRecord.id) == window_id).with_for_update()
    )
    return rows.scalars().first()


async def upcoming_windows(session: AsyncSession, *, now: datetime, limit: int = 200) -> Sequence[WindowFields]:
    """Windows not cancelled that have not ended, soonest start first (plain rows, read-only)."""
    rows = await session.execute(
        select(*_columns(FreezeWindowRecord))
        .where(col(FreezeWindowRecord.cancelled_at).is_(None), col(FreezeWindowRecord.ends_at) > now)
        .order_by(col(FreezeWindowRecord.starts_at), col(FreezeWindowRecord.id))
        .limit(limit)
    )
    return cast(Sequence[WindowFields], rows.all())


async def windows_in_force(
    session: AsyncSession, *, at: datetime, until: datetime, environment: str | None = None
) -> Sequence[WindowFields]:
    """Windows not cancelled that are in force at `at` or start before `until` (plain rows, read-only)."""
    query = select(*_columns(FreezeWindowRecord)).where(
        col(FreezeWindowRecord.cancelled_at).is_(None),
        col(FreezeWindowRecord.starts_at) <= until,
        col(FreezeWindowRecord.ends_at) > at,
    )
    if environment is not None:
        query = query.where(col(FreezeWindowRecord.environment) == environment)
    return cast(Sequence[WindowFields], (await session.execute(query)).all())


async def due_windows(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[FreezeWindowRecord]:
    """Windows with something to announce by `now`, locked; rows another replica holds are skipped."""
    rows = await session.execute(
        select(FreezeWindowRecord)
        .where(col(FreezeWindowRecord.next_event_at) <= now)
        .order_by(col(FreezeWindowRecord.next_event_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return rows.scalars().all()


async def existing_recurring_keys(session: AsyncSession, *, keys: Sequence[str]) -> set[str]:
    rows = await session.execute(
        select(col(FreezeWindowRecord.recurring_key)).where(col(FreezeWindowRecord.recurring_key).in_(list(keys)))
    )
    return {key for key in rows.scalars().all() if key is not None}


# --- exemptions ----------------------------------------------------------------------------------


async def exemptions_of(
    session: AsyncSession, *, window_ids: Sequence[int], status: str | None = None
) -> Sequence[FreezeExemptionRecord]:
    """The exemptions of these windows (only those with `status`, when given)."""
    query = select(FreezeExemptionRecord).where(col(FreezeExemptionRecord.window_id).in_(list(window_ids)))
    if status is not None:
        query = query.where(col(FreezeExemptionRecord.status) == status)
    return (await session.execute(query)).scalars().all()


async def exemption_by_id(session: AsyncSession, *, exemption_id: int) -> FreezeExemptionRecord | None:
    return await session.get(FreezeExemptionRecord, exemption_id)


async def locked_exemption(session: AsyncSession, *, exemption_id: int) -> FreezeExemptionRecord | None:
    rows = await session.execute(
        select(FreezeExemptionRecord).where(col(FreezeExemptionRecord.id) == exemption_id).with_for_update()
    )
    return rows.scalars().first()


async def next_event_at(session: AsyncSession) -> datetime | None:
    """When the scheduler next has something to announce (one read of the `next_event_at` index)."""
    value = (await session.execute(select(func.min(col(FreezeWindowRecord.next_event_at))))).scalar()
    if isinstance(value, str):  # SQLite hands an aggregate back as naive text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


async def lapsed_exemption_ids(session: AsyncSession, *, status: str, now: datetime) -> list[int]:
    """Ids of exemptions in `status` whose `expires_at` has passed."""
    rows = await session.execute(
        select(col(FreezeExemptionRecord.id)).where(
            col(FreezeExemptionRecord.status) == status, col(FreezeExemptionRecord.expires_at) <= now
        )
    )
    return [i for i in rows.scalars().all() if i is not None]


# --- deploys -------------------------------------------------------------------------------------


async def latest_deploys(
    session: AsyncSession, *, environment: str | None = None, limit: int = 100
) -> Sequence[DeployRecord]:
    """The newest deploy of each (environment, service), newest first."""
    latest = select(func.max(DeployRecord.id)).group_by(col(DeployRecord.environment), col(DeployRecord.service))
    if environment is not None:
        latest = latest.where(col(DeployRecord.environment) == environment)
    rows = await session.execute(
        select(DeployRecord)
        .where(col(DeployRecord.id).in_(latest.scalar_subquery()))
        .order_by(col(DeployRecord.id).desc())
        .limit(limit)
    )
    return rows.scalars().all()
