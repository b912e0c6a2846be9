"""The audit log's hash chain: append under the head-row lock, read back, verify.

Each entry's hash covers its own content and the previous entry's hash, so editing, deleting
or reordering any row breaks verification from that row on. With GUARDRAIL_AUDIT_KEY the hash is
an HMAC, which whoever can write the database cannot recompute; anchors (a head posted outside
the database) catch a deleted tail with a rewound head. What was hashed is stored (`content`). Appends lock the single
`audit_head` row (`UPDATE … RETURNING`), so concurrent writers — threads, processes, replicas
on one PostgreSQL — queue up instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.tables import AuditAnchorRecord, AuditHead, AuditRecord
from bot.db.upsert import insert_ignoring_conflict
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


TAMPERED, WRONG_KEY, NO_KEY = "tampered", "wrong key", "no key"


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    problem: str | None = None      # TAMPERED, or WRONG_KEY / NO_KEY: the key, not the log, is the problem
    unkeyed: int = 0                # version 1 (SHA-256 only) entries, all before `keyed_from`
    keyed_from: int | None = None   # the first entry signed with the key
    anchors: int = 0                # anchors checked

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


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_content(*, seq: int, at: datetime, actor: str, action: str, subject: str, details_json: str,
                  prev_hash: str, key_id: str | None = None) -> str:
    """The text an entry's hash covers: every column and the previous hash, as canonical JSON.

    Version 1 (no key) is the original format, so rows written before the content was stored
    are verified by rebuilding it; version 2 also names its version and the key's id.
    """
    fields: dict[str, Any] = {"seq": seq, "at": _iso(at), "actor": actor, "action": action, "subject": subject,
                              "details": details_json, "prev": prev_hash}
    if key_id is not None:
        fields.update(v=2, kid=key_id)
    return canonical_json(fields)


def entry_hash(*, seq: int, at: datetime, actor: str, action: str, subject: str, details_json: str,
               prev_hash: str) -> str:
    """The version 1 (plain SHA-256) hash of an entry."""
    return _sha256(entry_content(seq=seq, at=at, actor=actor, action=action, subject=subject,
                                 details_json=details_json, prev_hash=prev_hash))


def _sha256(content: str) -> str:
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

# Column widths: values are clipped to these *before* hashing, so what is stored is what was hashed.
ACTOR_MAX, ACTION_MAX, SUBJECT_MAX = 100, 100, 300


async def append_entry(session: AsyncSession, *, at: datetime, actor: str, action: str, subject: str,
                       details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Append one entry inside the caller's transaction (commit makes it visible).

    Signed with the key the unit of work carries (`Database(audit_key=…)`), else SHA-256.
    """
    key: AuditKey | None = session.info.get(AUDIT_KEY)
    locked = await session.execute(
        update(AuditHead).where(col(AuditHead.id) == 1).values(seq=col(AuditHead.seq) + 1)
        .returning(col(AuditHead.seq), col(AuditHead.hash))
    )
    seq, prev_hash = locked.one()
    clean = redact(dict(details or {}), own=_OWN_KEYS)
    details_json = canonical_json(clean)
    at = at.astimezone(UTC)
    actor, action, subject = actor[:ACTOR_MAX], action[:ACTION_MAX], subject[:SUBJECT_MAX]
    content = entry_content(seq=seq, at=at, actor=actor, action=action, subject=subject,
                            details_json=details_json, prev_hash=prev_hash, key_id=key.id if key else None)
    digest = key.sign(content) if key else _sha256(content)
    session.add(AuditRecord(seq=seq, at=at, actor=actor, action=action, subject=subject, details=details_json,
                            prev_hash=prev_hash, hash=digest, version=2 if key else 1, content=content))
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


async def verify_chain(session: AsyncSession, *, key: AuditKey | None = None,
                       anchors: Sequence[Anchor] = ()) -> ChainVerification:
    """Check every hash, link and anchor; name the first entry that does not verify.

    With a key, unkeyed (version 1) entries may only precede the keyed ones, and the newest entry
    must be keyed: a writer without the key cannot append a keyed entry, so rewriting the log as
    plain SHA-256 from any point on is detected. An anchor (seq, hash) posted outside the database
    must be in the chain with that hash: deleting the tail and rewinding the head is detected.
    """
    expected = {a.seq: a.hash for a in anchors}
    expected_seq, prev = 1, GENESIS_HASH
    checked = unkeyed = 0
    keyed_from: int | None = None
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
            bad = _check_entry(row, key, keyed=keyed_from is not None)
            if bad is not None:
                return ChainVerification(False, checked, row.seq, bad[1], problem=bad[0])
            if row.seq in expected and expected[row.seq] != row.hash:
                return ChainVerification(False, checked, row.seq,
                                         f"entry #{row.seq} is not the one anchored outside the database "
                                         f"(anchor {expected[row.seq][:12]}…, chain {row.hash[:12]}…): "
                                         "it and the entries after it were rewritten")
            if row.version == 2 and keyed_from is None:
                keyed_from = row.seq
            unkeyed += row.version == 1
            checked += 1
            expected_seq, prev = row.seq + 1, row.hash
        last = rows[-1].seq
    head = (await session.execute(select(AuditHead).where(col(AuditHead.id) == 1))).scalars().one()
    if head.seq != checked or head.hash != prev:
        return ChainVerification(False, checked, checked + 1 if head.seq > checked else checked,
                                 f"the chain ends at entry #{checked} but its head says #{head.seq}: "
                                 "entries were removed")
    beyond = sorted(seq for seq in expected if seq > checked)
    if beyond:
        return ChainVerification(False, checked, checked + 1,
                                 f"the chain ends at entry #{checked}, but an anchor posted outside the database "
                                 f"says entry #{beyond[-1]} existed: entries were removed and the head rewound")
    if key is not None and checked and keyed_from is None:
        return ChainVerification(False, checked, checked,
                                 f"none of the {checked} entries is signed with GUARDRAIL_AUDIT_KEY: no process "
                                 "has written with the key yet, or the log was rewritten without it")
    return ChainVerification(True, checked, unkeyed=unkeyed, keyed_from=keyed_from,
                             anchors=len(expected))


def _check_entry(row: AuditRecord, key: AuditKey | None, *, keyed: bool) -> tuple[str, str] | None:
    """(problem, reason) when the row's hash or stored content does not verify, else None."""
    n = row.seq
    if row.version == 1:
        if keyed:
            return (TAMPERED, f"entry #{n} is not signed with the key although earlier entries are: it was "
                              "rewritten (or written by a process without GUARDRAIL_AUDIT_KEY)")
        content = row.content if row.content is not None else entry_content(
            seq=row.seq, at=row.at, actor=row.actor, action=row.action, subject=row.subject,
            details_json=row.details, prev_hash=row.prev_hash)
        digest = _sha256(content)
    elif row.version == 2:
        if key is None:
            return (NO_KEY, f"entries from #{n} on are signed with GUARDRAIL_AUDIT_KEY: set it to verify them")
        if row.content is None:
            return (TAMPERED, f"entry #{n} lost what was signed: it was rewritten")
        content = row.content
        key_id = _parsed(content).get("kid")
        if key_id != key.id:
            if not keyed:
                return (WRONG_KEY, f"GUARDRAIL_AUDIT_KEY is not the key this log was signed with (entry #{n} "
                                   f"names key id {str(key_id)[:12]}; this key's id is {key.id})")
            return (TAMPERED, f"entry #{n} names another key than the entries before it: it was rewritten")
        digest = key.sign(content)
    else:
        return (TAMPERED, f"entry #{n} has an unknown version {row.version}: it was rewritten")
    if not hmac.compare_digest(digest, row.hash):
        return (TAMPERED, f"entry #{n} was changed after it was written")
    if row.content is not None:
        differs = _differs(row, _parsed(row.content))
        if differs:
            return (TAMPERED, f"entry #{n} was changed after it was written (its {differs} is not what was signed)")
    return None


def _parsed(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _differs(row: AuditRecord, signed: Mapping[str, Any]) -> str | None:
    """The first column whose value is not the one in the signed content."""
    try:
        at_matches = datetime.fromisoformat(str(signed.get("at"))) == row.at
    except ValueError:
        at_matches = False
    checks = [("seq", signed.get("seq") == row.seq), ("time", at_matches), ("actor", signed.get("actor") == row.actor),
              ("action", signed.get("action") == row.action), ("subject", signed.get("subject") == row.subject),
              ("details", signed.get("details") == row.details), ("link", signed.get("prev") == row.prev_hash)]
    return next((name for name, same in checks if not same), None)


# --- anchors ------------------------------------------------------------------------------------


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
