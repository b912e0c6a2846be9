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
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

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
        digest = sha256_hex(content)
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
