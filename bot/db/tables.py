"""Core tables. Feature tables live beside their repositories (db/<feature>.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from bot.db.types import UTCDateTime


class AuditRecord(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit log.

    `content` is exactly the text that was hashed (canonical JSON of every column and the previous
    hash), so verification never depends on serializing the columns again. `version` 1: SHA-256
    (entries written without GUARDRAIL_AUDIT_KEY; `content` is NULL in rows written before it was
    stored); 2: HMAC-SHA-256 with the key.
    """

    __tablename__ = "audit_entry"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor: str = Field(max_length=100)
    action: str = Field(max_length=100, index=True)
    subject: str = Field(max_length=300)
    details: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    content: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AuditHead(SQLModel, table=True):
    """A single row holding the chain's tip. Writers lock it, which serializes appends."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True)
    seq: int
    hash: str = Field(max_length=64)


class AuditAnchorRecord(SQLModel, table=True):
    """A chain head posted outside the database (an anchor), or claimed for posting.

    Only schedules the posts: the proof is the posted message, which a database writer cannot
    change. Inserted by one replica (primary key); `posted_at` is set once Slack accepted it.
    """

    __tablename__ = "audit_anchor"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    posted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class ProcessedDelivery(SQLModel, table=True):
    """Slack deliveries already handled (event ids, interaction ids): redeliveries are dropped."""

    __tablename__ = "processed_delivery"

    key: str = Field(primary_key=True, max_length=200)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
