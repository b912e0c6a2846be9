"""The audit log's hash chain: append under the head-row lock, read back (verify: `audit_verify`).

Each entry's hash covers its own content and the previous entry's hash, so editing, deleting
or reordering any row breaks verification from that row on. With GUARDRAIL_AUDIT_KEY the hash is
an HMAC, which whoever can write the database cannot recompute; anchors (a head posted outside
the database, `audit_anchors`) catch a deleted tail with a rewound head. What was hashed is
stored (`content`).
Appends lock the single `audit_head` row (`UPDATE … RETURNING`), so concurrent writers —
threads, processes, replicas on one PostgreSQL — queue up instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.db.tables import AuditHead, AuditRecord
from bot.redaction import redact

GENESIS_HASH = "0" * 64
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


TAMPERED, WRONG_KEY, NO_KEY = "tampered", "wrong key", "no key"


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    problem: str | None = None  # TAMPERED, or WRONG_KEY / NO_KEY: the key, not the log, is the problem
    unkeyed: int = 0  # version 1 (SHA-256 only) entries, all before `keyed_from`
    keyed_from: int | None = None  # the first entry signed with the key
    anchors: int = 0  # anchors checked

    @property
    def key_problem(self) -> bool:
        return self.problem in (WRONG_KEY, NO_KEY)


@dataclass(frozen=True)
class Anchor:
    """A chain head recorded outside the database: entry `seq` had hash `hash`."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`<seq>:<hash>`, as posted in the anchor channel; ValueError says what is wrong."""
        seq, sep, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if not sep or not seq.strip().isascii() or not seq.strip().isdigit() or int(seq) < 1:
            raise ValueError(f"{text!r}: write an anchor as <entry number>:<hash>, e.g. 120:3f2a…")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{text!r}: the hash must be the 64 hexadecimal characters posted with the anchor")
        return cls(int(seq), digest)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_content(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details_json: str,
    prev_hash: str,
    key_id: str | None = None,
) -> str:
    """The text an entry's hash covers: every column and the previous hash, as canonical JSON.

    Version 1 (no key) is the original format, so rows written before the content was stored
    are verified by rebuilding it; version 2 also names its version and the key's id.
    """
    fields: dict[str, Any] = {
        "seq": seq,
        "at": _iso(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details_json,
        "prev": prev_hash,
    }
    if key_id is not None:
        fields.update(v=2, kid=key_id)
    return canonical_json(fields)


def entry_hash(
    *, seq: int, at: datetime, actor: str, action: str, subject: str, details_json: str, prev_hash: str
) -> str:
    """The version 1 (plain SHA-256) hash of an entry."""
    return sha256_hex(
        entry_content(
            seq=seq, at=at, actor=actor, action=action, subject=subject, details_json=details_json, prev_hash=prev_hash
        )
    )


def sha256_hex(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@dataclass(frozen=True)
class AuditKey:
    """GUARDRAIL_AUDIT_KEY: entries are signed with HMAC-SHA-256, which a database writer without
    the key cannot recompute. `id` (from the key, revealing nothing of it) tells a wrong key from
    a changed entry."""

    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return hmac.new(self.secret, b"guardrail audit key id", hashlib.sha256).hexdigest()[:12]

    def sign(self, content: str) -> str:
        return hmac.new(self.secret, content.encode(), hashlib.sha256).hexdigest()


AUDIT_KEY = "guardrail.audit_key"  # session.info key: the unit of work's signing key (None: unkeyed)


class AuditKeyMissing(RuntimeError):
    """The chain's head is signed and this process has no GUARDRAIL_AUDIT_KEY: an unsigned entry
    after signed ones is what a rewrite without the key looks like, so it is refused, not written."""

    def __init__(self, signed_seq: int) -> None:
        self.signed_seq = signed_seq
        super().__init__(
            f"the audit log is signed with GUARDRAIL_AUDIT_KEY (entry #{signed_seq} is) and this "
            "process has no key: set GUARDRAIL_AUDIT_KEY, the same on every replica"
        )


# Column widths: values are clipped to these *before* hashing, so what is stored is what was hashed.
ACTOR_MAX, ACTION_MAX, SUBJECT_MAX = 100, 100, 300


@dataclass(frozen=True)
class NewEntry:
    """One entry to append (`append_entries`): what happened, to what, with which details."""

    actor: str
    action: str
    subject: str
    details: Mapping[str, Any] | None = None


async def append_entry(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (commit makes it visible).

    Signed with the key the unit of work carries (`Database(audit_key=…)`), else SHA-256 — but
    only while no entry is signed: `AuditKeyMissing` (the transaction rolls back) once one is.
    """
    (entry,) = await append_entries(session, at=at, entries=[NewEntry(actor, action, subject, details)])
    return entry


async def append_entries(session: AsyncSession, *, at: datetime, entries: Sequence[NewEntry]) -> list[AuditEntry]:
    """Append `entries` in order, inside the caller's transaction, in three statements whatever
    their number: reserve their numbers on the head row (which locks it, as one append does),
    insert them all, move the head's hash. The chain is the same as one `append_entry` each.
    """
    if not entries:
        return []
    key: AuditKey | None = session.info.get(AUDIT_KEY)
    locked = await session.execute(
        update(AuditHead)
        .where(col(AuditHead.id) == 1)
        .values(seq=col(AuditHead.seq) + len(entries))
        .returning(col(AuditHead.seq), col(AuditHead.hash))
    )
    last_seq, prev_hash = locked.one()
    first_seq = last_seq - len(entries) + 1
    if key is None and first_seq > 1 and await _signed(session, first_seq - 1):
        raise AuditKeyMissing(first_seq - 1)
    at = at.astimezone(UTC)
    written: list[AuditEntry] = []
    rows: list[dict[str, Any]] = []
    for seq, new in enumerate(entries, start=first_seq):
        clean = redact(dict(new.details or {}), own=_OWN_KEYS)
        details_json = canonical_json(clean)
        actor, action, subject = new.actor[:ACTOR_MAX], new.action[:ACTION_MAX], new.subject[:SUBJECT_MAX]
        content = entry_content(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details_json=details_json,
            prev_hash=prev_hash,
            key_id=key.id if key else None,
        )
        digest = key.sign(content) if key else sha256_hex(content)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subject,
                "details": details_json,
                "prev_hash": prev_hash,
                "hash": digest,
                "version": 2 if key else 1,
                "content": content,
            }
        )
        written.append(AuditEntry(seq, at, actor, action, subject, clean, prev_hash, digest))
        prev_hash = digest
    await session.execute(insert(AuditRecord), rows)
    await session.execute(update(AuditHead).where(col(AuditHead.id) == 1).values(hash=prev_hash))
    await session.flush()  # as before batching: the caller's pending rows are written by now too
    return written


async def _signed(session: AsyncSession, seq: int) -> bool:
    version = (await session.execute(select(col(AuditRecord.version)).where(col(AuditRecord.seq) == seq))).scalar()
    return version == 2


async def signed_head(session: AsyncSession) -> int | None:
    """The head's entry number when it is signed with a key (an unkeyed process must not append)."""
    seq = (await session.execute(select(col(AuditHead.seq)).where(col(AuditHead.id) == 1))).scalar_one()
    return seq if seq and await _signed(session, seq) else None


def _to_entry(row: AuditRecord) -> AuditEntry:
    return AuditEntry(
        row.seq, row.at, row.actor, row.action, row.subject, json.loads(row.details), row.prev_hash, row.hash
    )


async def latest(session: AsyncSession, limit: int, *, action_prefix: str | None = None) -> list[AuditEntry]:
    """The newest `limit` entries, oldest first."""
    query = select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(limit)
    if action_prefix is not None:
        query = query.where(col(AuditRecord.action).startswith(action_prefix))
    rows = (await session.execute(query)).scalars().all()
    return [_to_entry(r) for r in reversed(rows)]


async def entries_after(
    session: AsyncSession, after: int, *, limit: int, since: datetime | None = None, subject: str | None = None
) -> list[AuditEntry]:
    """Up to `limit` entries numbered above `after`, in sequence order: one batch of a long read."""
    query = select(AuditRecord).where(col(AuditRecord.seq) > after).order_by(col(AuditRecord.seq)).limit(limit)
    if since is not None:
        query = query.where(col(AuditRecord.at) >= since)
    if subject is not None:
        query = query.where(col(AuditRecord.subject) == subject)
    return [_to_entry(row) for row in (await session.execute(query)).scalars().all()]


async def iterate(
    session: AsyncSession, *, since: datetime | None = None, batch: int = 500, subject: str | None = None
) -> AsyncIterator[AuditEntry]:
    """Every entry in sequence order, read in batches in this one session (short lists only;
    `AuditLog.entries` reads a long log in separate sessions)."""
    last = 0
    while rows := await entries_after(session, last, limit=batch, since=since, subject=subject):
        for entry in rows:
            yield entry
        last = rows[-1].seq
