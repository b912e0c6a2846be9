"""Claiming a Slack delivery exactly once, across retries and replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.db.tables import ProcessedDelivery
from bot.db.upsert import insert_ignoring_conflict


async def claim(session: AsyncSession, key: str, at: datetime) -> bool:
    """Record `key`; True if this caller is the first to claim it."""
    return await insert_ignoring_conflict(session, ProcessedDelivery, {"key": key[:200], "at": at}) is not None


async def forget_before(session: AsyncSession, cutoff: datetime) -> None:
    """Slack stops redelivering after about an hour; older keys are dead weight."""
    await session.execute(delete(ProcessedDelivery).where(col(ProcessedDelivery.at) < cutoff))
