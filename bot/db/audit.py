"""The audit log's hash chain: append under the head-row lock, read back, verify.

Each entry's hash covers its own content and the previous entry's hash, so editing, deleting
or reordering any row breaks verification from that row on. Appends lock the single
`audit_head` row (`UPDATE … RETURNING`), so concurrent writers — threads, processes, replicas
on one PostgreSQL — queue up instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.tables import AuditHead, AuditRecord
from bot.redaction import header_shown, secret_key

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
# guardrail's own top-level detail keys that name no secret (an announcement's key, a deploy's
# idempotency key); nested values come from actions and users and get no such exemption.
_OWN_KEYS = frozenset({"key", "idempotency_key"})


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def redact(value: Any, *, own: frozenset[str] = frozenset()) -> Any:
    """Replace values under secret-looking keys (`bot.redaction.secret_key`), at any depth, and
    every header value but a few harmless ones: secrets never reach the log."""
    if isinstance(value, Mapping):
        shown: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k)
            if secret_key(name) and name not in own:
                shown[name] = REDACTED
            elif name.lower() == "headers" and isinstance(v, Mapping):
                shown[name] = {str(h): hv if header_shown(str(h)) else REDACTED for h, hv in v.items()}
            else:
                shown[name] = redact(v)
        return shown
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(*, seq: int, at: datetime, actor: str, action: str, subject: str, details_json: str,
               prev_hash: str) -> str:
    content = canonical_json({
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details_json,
        "prev": prev_hash,
    })
    return hashlib.sha256(content.encode()).hexdigest()


async def append_entry(session: AsyncSession, *, at: datetime, actor: str, action: str, subject: str,
                       details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Append one entry inside the caller's transaction (commit makes it visible)."""
    locked = await session.execute(
        update(AuditHead).where(col(AuditHead.id) == 1).values(seq=col(AuditHead.seq) + 1)
        .returning(col(AuditHead.seq), col(AuditHead.hash))
    )
    seq, prev_hash = locked.one()
    clean = redact(dict(details or {}), own=_OWN_KEYS)
    details_json = canonical_json(clean)
    at = at.astimezone(UTC)
    digest = entry_hash(seq=seq, at=at, actor=actor, action=action, subject=subject,
                        details_json=details_json, prev_hash=prev_hash)
    session.add(AuditRecord(seq=seq, at=at, actor=actor[:100], action=action[:100], subject=subject[:300],
                            details=details_json, prev_hash=prev_hash, hash=digest))
    await session.execute(
        update(AuditHead).where(col(AuditHead.id) == 1).values(hash=digest)
    )
    await session.flush()
    return AuditEntry(seq, at, actor, action, subject, clean, prev_hash, digest)


def _to_entry(row: AuditRecord) -> AuditEntry:
    return AuditEntry(row.seq, row.at, row.actor, row.action, row.subject, json.loads(row.details),
                      row.prev_hash, row.hash)


async def latest(session: AsyncSession, limit: int, *, action_prefix: str | None = None) -> list[AuditEntry]:
    """The newest `limit` entries, oldest first."""
    query = select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(limit)
    if action_prefix is not None:
        query = query.where(col(AuditRecord.action).startswith(action_prefix))
    rows = (await session.execute(query)).scalars().all()
    return [_to_entry(r) for r in reversed(rows)]


async def iterate(session: AsyncSession, *, since: datetime | None = None, batch: int = 500,
                  subject: str | None = None) -> AsyncIterator[AuditEntry]:
    """Every entry in sequence order, read in batches so exports stay small in memory."""
    last = 0
    while True:
        query = select(AuditRecord).where(col(AuditRecord.seq) > last).order_by(col(AuditRecord.seq)).limit(batch)
        if since is not None:
            query = query.where(col(AuditRecord.at) >= since)
        if subject is not None:
            query = query.where(col(AuditRecord.subject) == subject)
        rows = (await session.execute(query)).scalars().all()
        if not rows:
            return
        for row in rows:
            yield _to_entry(row)
        last = rows[-1].seq


async def verify_chain(session: AsyncSession) -> ChainVerification:
    """Recompute every hash and link; name the first entry that does not verify."""
    expected_seq, prev = 1, GENESIS_HASH
    checked = 0
    last = 0
    while True:
        query = select(AuditRecord).where(col(AuditRecord.seq) > last).order_by(col(AuditRecord.seq)).limit(1000)
        rows = (await session.execute(query)).scalars().all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return ChainVerification(False, checked, expected_seq, f"entry #{expected_seq} is missing")
            if row.prev_hash != prev:
                return ChainVerification(False, checked, row.seq,
                                         f"entry #{row.seq} does not link to entry #{row.seq - 1}")
            digest = entry_hash(seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                                subject=row.subject, details_json=row.details, prev_hash=row.prev_hash)
            if digest != row.hash:
                return ChainVerification(False, checked, row.seq,
                                         f"entry #{row.seq} was changed after it was written")
            checked += 1
            expected_seq, prev = row.seq + 1, row.hash
        last = rows[-1].seq
    head = (await session.execute(select(AuditHead).where(col(AuditHead.id) == 1))).scalars().one()
    if head.seq != checked or head.hash != prev:
        return ChainVerification(False, checked, checked + 1 if head.seq > checked else checked,
                                 f"the chain ends at entry #{checked} but its head says #{head.seq}: "
                                 "entries were removed")
    return ChainVerification(True, checked)
