"""The outbox: Slack posts that must happen, written in the same transaction as the change they announce.

A row is `pending` until a dispatcher claims it (a conditional UPDATE that moves `due_at` to the
end of a lease, so no other replica takes it meanwhile; SKIP LOCKED on PostgreSQL), posts it and
marks it `posted`. A failed attempt moves `due_at` on (backoff); a replica that died mid-attempt
leaves the row to be claimed again when its lease ends. `maybe_posted` remembers that an attempt
may have reached Slack (it ended without a definite answer), so the next one looks in the channel
before posting again; the claim copies it to `look_first` for the attempt it starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.types import UTCDateTime

Session = AsyncSession  # what services name in annotations, so they import no SQL library

PENDING, POSTED, SKIPPED, EXPIRED, FAILED = "pending", "posted", "skipped", "expired", "failed"


class OutboxRecord(SQLModel, table=True):
    """One post that must happen: a domain message (`kind` + JSON `payload`) rendered at send time."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(64), nullable=False))
    payload: str = Field(sa_column=Column(Text(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    status: str = Field(default=PENDING, sa_column=Column(String(10), nullable=False, server_default=PENDING))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))
    maybe_posted: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default=false()))
    look_first: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default=false()))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    channel: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    ts: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    attempts: int  # including the attempt this claim starts
    look_first: bool  # an earlier attempt may have reached Slack


async def enqueue(
    session: AsyncSession, *, kind: str, payload: dict[str, Any], at: datetime, expires_at: datetime | None = None
) -> int:
    """Add a message to post, due now; part of the caller's transaction. Its id."""
    row = OutboxRecord(
        kind=kind, payload=json.dumps(payload, sort_keys=True), created_at=at, due_at=at, expires_at=expires_at
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def enqueue_many(
    session: AsyncSession, *, messages: Sequence[tuple[str, dict[str, Any], datetime, datetime | None]]
) -> None:
    """Add many messages (kind, payload, at, expires_at) with one multi-row INSERT."""
    if messages:
        await session.execute(
            insert(OutboxRecord).values(
                [
                    {
                        "kind": kind,
                        "payload": json.dumps(payload, sort_keys=True),
                        "created_at": at,
                        "due_at": at,
                        "expires_at": expires_at,
                        "status": PENDING,
                        "attempts": 0,
                        "maybe_posted": False,
                        "look_first": False,
                    }
                    for kind, payload, at, expires_at in messages
                ]
            )
        )


async def claim_due(session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int) -> list[ClaimedRow]:
    """Take up to `limit` due pending rows for one attempt each, in one statement.

    The outer WHERE repeats the due condition, so on PostgreSQL a replica that waited for another's
    row lock re-checks it and takes nothing; SKIP LOCKED lets replicas take different rows instead.
    """
    due = (
        select(col(OutboxRecord.id))
        .where(col(OutboxRecord.status) == PENDING, col(OutboxRecord.due_at) <= now)
        .order_by(col(OutboxRecord.due_at), col(OutboxRecord.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(OutboxRecord)
        .where(
            col(OutboxRecord.id).in_(due.scalar_subquery()),
            col(OutboxRecord.status) == PENDING,
            col(OutboxRecord.due_at) <= now,
        )
        .values(
            due_at=lease_until,
            attempts=col(OutboxRecord.attempts) + 1,
            look_first=col(OutboxRecord.maybe_posted),
            maybe_posted=True,
        )
        .returning(
            col(OutboxRecord.id),
            col(OutboxRecord.kind),
            col(OutboxRecord.payload),
            col(OutboxRecord.created_at),
            col(OutboxRecord.expires_at),
            col(OutboxRecord.attempts),
            col(OutboxRecord.look_first),
        )
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(statement)).all()
    # RETURNING a primary key: never NULL, though the column type allows it before the INSERT.
    claimed = [
        ClaimedRow(
            id=cast(int, r[0]),
            kind=r[1],
            payload=json.loads(r[2]),
            created_at=_utc(r[3]),
            expires_at=_utc(r[4]) if r[4] is not None else None,
            attempts=r[5],
            look_first=bool(r[6]),
        )
        for r in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


async def finish(
    session: AsyncSession,
    *,
    row_id: int,
    status: str,
    at: datetime,
    channel: str | None = None,
    ts: str | None = None,
    error: str | None = None,
) -> bool:
    """Mark a claimed row done (posted, skipped, expired or failed); idempotent: only a pending row
    changes. True when this call changed it."""
    result = await session.execute(
        update(OutboxRecord)
        .where(col(OutboxRecord.id) == row_id, col(OutboxRecord.status) == PENDING)
        .values(
            status=status, done_at=at, channel=channel, ts=ts, last_error=_short(error), maybe_posted=status == POSTED
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def finish_many(
    session: AsyncSession, *, done: Sequence[tuple[int, str, str | None, str | None]], at: datetime
) -> None:
    """Mark claimed rows done, (row id, status, channel, ts) each, in one executemany; as `finish`,
    only a pending row changes."""
    if not done:
        return
    # Through the connection, so it is a plain executemany (the ORM session would want primary keys).
    statement = (
        update(OutboxRecord)
        .where(col(OutboxRecord.id) == bindparam("row_id"), col(OutboxRecord.status) == PENDING)
        .values(
            status=bindparam("new_status"),
            done_at=at,
            channel=bindparam("new_channel"),
            ts=bindparam("new_ts"),
            last_error=None,
            maybe_posted=bindparam("posted"),
        )
    )
    connection = await session.connection()
    await connection.execute(
        statement,
        [
            {"row_id": row_id, "new_status": status, "new_channel": channel, "new_ts": ts, "posted": status == POSTED}
            for row_id, status, channel, ts in done
        ],
    )


async def retry_later(session: AsyncSession, *, row_id: int, due_at: datetime, maybe_posted: bool, error: str) -> None:
    """An attempt failed: due again at `due_at`; `maybe_posted` when this or an earlier attempt may
    have reached Slack."""
    await session.execute(
        update(OutboxRecord)
        .where(col(OutboxRecord.id) == row_id, col(OutboxRecord.status) == PENDING)
        .values(due_at=due_at, maybe_posted=maybe_posted, last_error=_short(error))
        .execution_options(synchronize_session=False)
    )


async def forget_done_before(session: AsyncSession, *, cutoff: datetime) -> None:
    """Delete rows that were posted, skipped or expired before `cutoff` (failed ones are kept)."""
    await session.execute(
        delete(OutboxRecord).where(
            col(OutboxRecord.status).in_([POSTED, SKIPPED, EXPIRED]), col(OutboxRecord.done_at) < cutoff
        )
    )


async def by_id(session: AsyncSession, *, row_id: int) -> OutboxRecord | None:
    return await session.get(OutboxRecord, row_id)


async def all_rows(session: AsyncSession) -> Sequence[OutboxRecord]:
    return (await session.execute(select(OutboxRecord).order_by(col(OutboxRecord.id)))).scalars().all()


def _utc(value: Any) -> datetime:
    """A datetime read back through RETURNING or an aggregate (SQLite hands back naive text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _short(error: str | None) -> str | None:
    return error[:300] if error is not None else None


async def backlog(session: AsyncSession, *, now: datetime) -> int:
    """Pending messages already due (for /metrics): one count on the (status, due_at) index."""
    query = (
        select(func.count())
        .select_from(OutboxRecord)
        .where(col(OutboxRecord.status) == PENDING, col(OutboxRecord.due_at) <= now)
    )
    return int((await session.execute(query)).scalar_one())
