"""Anchors: the chain's head, claimed once across replicas, posted outside the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.db.audit import Anchor
from bot.db.tables import AuditAnchorRecord, AuditHead, AuditRecord
from bot.db.upsert import insert_ignoring_conflict


async def head(session: AsyncSession) -> Anchor | None:
    """The chain's head as an anchor (None while the log is empty)."""
    row = (await session.execute(select(AuditHead).where(col(AuditHead.id) == 1))).scalars().one()
    return Anchor(row.seq, row.hash) if row.seq else None


async def hash_at(session: AsyncSession, seq: int) -> str | None:
    """The hash entry `seq` has now (None when it is gone)."""
    return (await session.execute(select(col(AuditRecord.hash)).where(col(AuditRecord.seq) == seq))).scalar()


async def broken_anchor(session: AsyncSession, head: Anchor | None, anchored: Anchor) -> str | None:
    """What is wrong when the chain no longer holds a posted anchor — exactly what anchors exist to
    catch: a deleted tail with the head rewound, or entries rewritten; None when it holds it."""
    seq = head.seq if head is not None else 0
    if seq < anchored.seq:
        return f"audit log head #{seq} is behind the last anchor #{anchored.seq}: the log was rewound"
    if await hash_at(session, anchored.seq) != anchored.hash:
        return (
            f"audit log entry #{anchored.seq} no longer has the hash posted in its anchor "
            f"({anchored.hash[:12]}…): the log was rewritten"
        )
    return None


async def last_posted_anchor(session: AsyncSession) -> tuple[Anchor, datetime] | None:
    """The newest anchor that was posted, and when."""
    row = (
        (
            await session.execute(
                select(AuditAnchorRecord)
                .where(col(AuditAnchorRecord.posted_at).is_not(None))
                .order_by(col(AuditAnchorRecord.seq).desc())
                .limit(1)
            )
        )
        .scalars()
        .first()
    )
    return None if row is None or row.posted_at is None else (Anchor(row.seq, row.hash), row.posted_at)


async def claim_anchor(session: AsyncSession, anchor: Anchor, *, at: datetime, retry_before: datetime) -> bool:
    """True for the one caller (of any replica) that may post `anchor` now: it inserted the claim,
    or took over a claim made before `retry_before` that was never marked posted."""
    values = {"seq": anchor.seq, "hash": anchor.hash, "at": at, "posted_at": None}
    if await insert_ignoring_conflict(session, AuditAnchorRecord, values) is not None:
        return True
    retaken = await session.execute(
        update(AuditAnchorRecord)
        .where(
            col(AuditAnchorRecord.seq) == anchor.seq,
            col(AuditAnchorRecord.posted_at).is_(None),
            col(AuditAnchorRecord.at) <= retry_before,
        )
        .values(at=at)
        .returning(col(AuditAnchorRecord.seq))
    )
    return retaken.first() is not None


async def mark_anchor_posted(session: AsyncSession, anchor: Anchor, *, at: datetime) -> None:
    await session.execute(
        update(AuditAnchorRecord).where(col(AuditAnchorRecord.seq) == anchor.seq).values(posted_at=at)
    )
