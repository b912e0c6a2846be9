"""Verifying the audit log's chain: every hash, link, signed text, key and anchor.

Kept apart from appending (`bot.db.audit`) because the rules for what counts as tampering —
unkeyed entries after keyed ones, an anchor the chain no longer holds — are read on their own.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.db.audit import (
    GENESIS_HASH,
    NO_KEY,
    TAMPERED,
    WRONG_KEY,
    Anchor,
    AuditKey,
    ChainVerification,
    entry_content,
    sha256_hex,
)
from bot.db.tables import AuditHead, AuditRecord


class ChainCheck:
    """Check every hash, link and anchor; name the first entry that does not verify.

    With a key, unkeyed (version 1) entries may only precede the keyed ones, and the newest entry
    must be keyed: a writer without the key cannot append a keyed entry, so rewriting the log as
    plain SHA-256 from any point on is detected. An anchor (seq, hash) posted outside the database
    must be in the chain with that hash: deleting the tail and rewinding the head is detected.

    One batch of entries per `step`, each step in a session of its own: a long log is read in many
    short, separately bounded reads, not one long one.

    Each step reads the head row *before* its entries, so every entry the head counts is visible to
    that read; entries appended meanwhile are simply read by a later step.
    """

    def __init__(
        self, *, key: AuditKey | None = None, anchors: Sequence[Anchor] = (), previous: Sequence[AuditKey] = ()
    ) -> None:
        self._key = key
        # Key id → (rank, key): previous keys oldest first, then the current one. Along the chain a
        # key may only give way to a newer one, so a leaked old key cannot rewrite what followed it.
        ring = [*previous, *([key] if key is not None else [])]
        self._keys = {k.id: (rank, k) for rank, k in enumerate(ring)}
        self._rank = -1
        self._expected = {a.seq: a.hash for a in anchors}
        self._next_seq, self._prev = 1, GENESIS_HASH
        self._checked = self._unkeyed = 0
        self._keyed_from: int | None = None

    async def step(self, session: AsyncSession, *, batch: int = 1000) -> ChainVerification | None:
        """Check the next `batch` entries: the result once the chain is read to its end or found
        broken, else None (call again, in a fresh session)."""
        head = (await session.execute(select(AuditHead).where(col(AuditHead.id) == 1))).scalars().one()
        query = (
            select(AuditRecord)
            .where(col(AuditRecord.seq) >= self._next_seq)
            .order_by(col(AuditRecord.seq))
            .limit(batch)
        )
        rows = (await session.execute(query)).scalars().all()
        broken = self._check_rows(rows)
        if broken is not None:
            return broken
        if len(rows) == batch or (rows and self._checked > head.seq):
            return None  # more to read, or entries appended after this step read the head
        return self._finish(head)

    def _check_rows(self, rows: Sequence[AuditRecord]) -> ChainVerification | None:
        expected = self._expected
        for row in rows:
            checked = self._checked
            if row.seq != self._next_seq:
                return ChainVerification(False, checked, self._next_seq, f"entry #{self._next_seq} is missing")
            if row.prev_hash != self._prev:
                return ChainVerification(
                    False, checked, row.seq, f"entry #{row.seq} does not link to entry #{row.seq - 1}"
                )
            bad = _check_entry(row, self._key, self._keys, keyed=self._keyed_from is not None, rank=self._rank)
            if bad is not None:
                return ChainVerification(False, checked, row.seq, bad[1], problem=bad[0])
            if row.version == 2:
                self._rank = self._keys[str(_parsed(row.content or "").get("kid"))][0]
            if row.seq in expected and expected[row.seq] != row.hash:
                return ChainVerification(
                    False,
                    checked,
                    row.seq,
                    f"entry #{row.seq} is not the one anchored outside the database "
                    f"(anchor {expected[row.seq][:12]}…, chain {row.hash[:12]}…): "
                    "it and the entries after it were rewritten",
                )
            if row.version == 2 and self._keyed_from is None:
                self._keyed_from = row.seq
            self._unkeyed += row.version == 1
            self._checked += 1
            self._next_seq, self._prev = row.seq + 1, row.hash
        return None

    def _finish(self, head: AuditHead) -> ChainVerification:
        checked, expected = self._checked, self._expected
        if head.seq != checked or head.hash != self._prev:
            return ChainVerification(
                False,
                checked,
                checked + 1 if head.seq > checked else checked,
                f"the chain ends at entry #{checked} but its head says #{head.seq}: entries were removed",
            )
        beyond = sorted(seq for seq in expected if seq > checked)
        if beyond:
            return ChainVerification(
                False,
                checked,
                checked + 1,
                f"the chain ends at entry #{checked}, but an anchor posted outside the "
                f"database says entry #{beyond[-1]} existed: entries were removed and the "
                "head rewound",
            )
        if self._key is not None and checked and self._keyed_from is None:
            return ChainVerification(
                False,
                checked,
                checked,
                f"none of the {checked} entries is signed with GUARDRAIL_AUDIT_KEY: no "
                "process has written with the key yet, or the log was rewritten without it",
            )
        return ChainVerification(
            True, checked, unkeyed=self._unkeyed, keyed_from=self._keyed_from, anchors=len(expected)
        )


def _check_entry(
    row: AuditRecord, key: AuditKey | None, keys: Mapping[str, tuple[int, AuditKey]], *, keyed: bool, rank: int
) -> tuple[str, str] | None:
    """(problem, reason) when the row's hash or stored content does not verify, else None.

    `keys`: the current key and GUARDRAIL_AUDIT_KEY_PREVIOUS by key id, with their rank (oldest 0);
    `rank`: that of the key the previous signed entry used."""
    n = row.seq
    if row.version == 1:
        if keyed:
            return (
                TAMPERED,
                f"entry #{n} is not signed with the key although earlier entries are: it was "
                "rewritten (or written by a process without GUARDRAIL_AUDIT_KEY)",
            )
        content = (
            row.content
            if row.content is not None
            else entry_content(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                details_json=row.details,
                prev_hash=row.prev_hash,
            )
        )
        digest = sha256_hex(content)
    elif row.version == 2:
        if not keys:
            return (NO_KEY, f"entries from #{n} on are signed with GUARDRAIL_AUDIT_KEY: set it to verify them")
        if row.content is None:
            return (TAMPERED, f"entry #{n} lost what was signed: it was rewritten")
        content = row.content
        key_id = str(_parsed(content).get("kid"))
        if key_id not in keys:
            if not keyed:
                known = ", ".join(keys)
                return (
                    WRONG_KEY,
                    f"GUARDRAIL_AUDIT_KEY is not the key this log was signed with (entry #{n} "
                    f"names key id {key_id[:12]}; this key's id is "
                    f"{key.id if key is not None else 'unset'}"
                    f"{'' if len(keys) < 2 or key is None else f'; known ids {known}'}). "
                    "After changing the key, set the old one in GUARDRAIL_AUDIT_KEY_PREVIOUS",
                )
            return (
                TAMPERED,
                f"entry #{n} names another key than the entries before it, not one in "
                "GUARDRAIL_AUDIT_KEY_PREVIOUS: it was rewritten (or an old key is missing there)",
            )
        entry_rank, signing_key = keys[key_id]
        if entry_rank < rank:
            return (
                TAMPERED,
                f"entry #{n} is signed with an older key than the entries before it: it was "
                "rewritten with a retired key",
            )
        digest = signing_key.sign(content)
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
    checks = [
        ("seq", signed.get("seq") == row.seq),
        ("time", at_matches),
        ("actor", signed.get("actor") == row.actor),
        ("action", signed.get("action") == row.action),
        ("subject", signed.get("subject") == row.subject),
        ("details", signed.get("details") == row.details),
        ("link", signed.get("prev") == row.prev_hash),
    ]
    return next((name for name, same in checks if not same), None)
