"""Anchors: the chain's head, claimed once across replicas, posted outside the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.audit import Anchor
from bot.db.tables import AuditAnchorRecord, AuditHead
from bot.db.upsert import insert_ignoring_conflict


async def head(session: AsyncSession) -> Anchor | None:
    """The chain's head as an anchor (None while the log is empty)."""
    row = (await session.execute(select(AuditHead).where(col(AuditHead.id) == 1))).scalars().one()
    return Anchor(row.seq, row.hash) if row.seq else None


async def last_posted_anchor(session: AsyncSession) -> tuple[Anchor, datetime] | None:
    """The newest anchor that was posted, and when."""
    row = (await session.execute(
        select(AuditAnchorRecord).where(col(AuditAnchorRecord.posted_at).is_not(None))
        .order_by(col(AuditAnchorRecord.seq).desc()).limit(1))).scalars().first()
    return None if row is None or row.posted_at is None else (Anchor(row.seq, row.hash), row.posted_at)


async def claim_anchor(session: AsyncSession, anchor: Anchor, *, at: datetime, retry_before: datetime) -> bool:
    """True for the one caller (of any replica) that may post `anchor` now: it inserted the claim,
    or took over a claim made before `retry_before` that was never marked posted."""
    values = {"seq": anchor.seq, "hash": anchor.hash, "at": at, "posted_at": None}
    if await insert_ignoring_conflict(session, AuditAnchorRecord, values) is not None:
        return True
    retaken = await session.execute(
        update(AuditAnchorRecord)
        .where(col(AuditAnchorRecord.seq) == anchor.seq, col(AuditAnchorRecord.posted_at).is_(None),
               col(AuditAnchorRecord.at) <= retry_before)
        .values(at=at).returning(col(AuditAnchorRecord.seq)))
    return retaken.first() is not None


async def mark_anchor_posted(session: AsyncSession, anchor: Anchor, *, at: datetime) -> None:
    await session.execute(update(AuditAnchorRecord).where(col(AuditAnchorRecord.seq) == anchor.seq)
                          .values(posted_at=at))
