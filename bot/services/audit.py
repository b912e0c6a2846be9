"""The audit log as a service: record, read, export, verify, anchor. No transport types here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.clock import Clock
from bot.config import AuditSettings
from bot.db import audit as chain
from bot.db import audit_anchors as anchors_table
from bot.db.audit import Anchor as Anchor  # the views render these from here (views read no database)
from bot.db.audit import AuditEntry as AuditEntry
from bot.db.audit import AuditKey, ChainVerification
from bot.db.audit import AuditKeyMissing as AuditKeyMissing  # raised by every append; callers catch it from here
from bot.db.audit_verify import ChainCheck
from bot.db.engine import Database

log = logging.getLogger(__name__)

CONFIG_LOADED = "config.loaded"
READ_BATCH = 1000  # entries per read of a long log; each read is bounded on its own (DATABASE_TIMEOUT)
ANCHOR_RETRY = timedelta(minutes=1)  # a claimed anchor not posted by then is posted by the next tick
UNSIGNED_WARNING = (
    "GUARDRAIL_AUDIT_KEY is not set: the audit log is chained with plain SHA-256, which whoever "
    "can write the database can recompute. Set it (and audit.anchor_channel) to make "
    "rewriting the log detectable."
)


class AnchorPoster(Protocol):
    async def post_anchor(self, channel: str, anchor: Anchor) -> bool:
        """Post the anchor where a database writer cannot change it; False (never raise) when it
        could not be posted: a later tick retries."""
        ...

    async def post_alert(self, channel: str, text: str) -> bool:
        """Post a warning that the log no longer holds a posted anchor; False (never raise) on failure."""
        ...


class NoAnchorPoster:
    """Used before Slack is wired (CLI): nothing is posted."""

    async def post_anchor(self, channel: str, anchor: Anchor) -> bool:
        return False

    async def post_alert(self, channel: str, text: str) -> bool:
        return False


class _Unchanged(Exception):
    """Rolls back a config entry that would repeat the previous one."""


class AuditLog:
    """Append-only, hash-chained record of everything guardrail and its users did."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: AuditSettings | None = None,
        *,
        previous_keys: Sequence[AuditKey] = (),
        poster: AnchorPoster | None = None,
    ) -> None:
        self._db = db
        self._previous_keys = tuple(previous_keys)  # verification only: GUARDRAIL_AUDIT_KEY_PREVIOUS
        self._clock = clock
        self._settings = settings or AuditSettings()
        self._poster: AnchorPoster = poster or NoAnchorPoster()
        self._alerts_logged: set[str] = set()
        self._alerts_posted: set[str] = set()

    @property
    def signed(self) -> bool:
        """Whether new entries are signed with GUARDRAIL_AUDIT_KEY."""
        return self._db.audit_key is not None

    async def key_missing(self) -> AuditKeyMissing | None:
        """Why this process cannot append (the log is signed and it has no key), else None."""
        if self.signed:
            return None
        async with self._db.reader() as session:
            seq = await chain.signed_head(session)
        return None if seq is None else AuditKeyMissing(seq)

    @property
    def anchoring(self) -> bool:
        return self._settings.anchor_channel is not None

    async def record(
        self, *, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Append one entry in its own transaction (features write theirs inside their own)."""
        async with self._db.unit_of_work() as session:
            return await chain.append_entry(
                session, at=self._clock.now(), actor=actor, action=action, subject=subject, details=details
            )

    async def record_config(self, sha256: str, files: list[str]) -> bool:
        """Write `config.loaded` when the configuration hash differs from the last one recorded.

        The check and the append share one transaction that holds the chain lock, so replicas
        starting together write it once.
        """
        try:
            async with self._db.unit_of_work() as session:
                # Appending first takes the chain lock; then the check cannot race another replica.
                await chain.append_entry(
                    session,
                    at=self._clock.now(),
                    actor="system",
                    action=CONFIG_LOADED,
                    subject=sha256,
                    details={"files": files},
                )
                previous = await chain.latest(session, 2, action_prefix=CONFIG_LOADED)
                if len(previous) == 2 and previous[0].subject == sha256:
                    raise _Unchanged
        except _Unchanged:
            return False
        return True

    async def latest(self, limit: int) -> list[AuditEntry]:
        async with self._db.reader() as session:
            return await chain.latest(session, limit)

    async def entries(
        self, *, since: datetime | None = None, subject: str | None = None, batch: int = READ_BATCH
    ) -> AsyncIterator[AuditEntry]:
        """Every entry in order, read `batch` at a time, each read bounded on its own and finished
        before its entries are handed out: a slow consumer holds no session open."""
        last = 0
        while True:
            async with self._db.reader() as session:
                rows = await chain.entries_after(session, last, limit=batch, since=since, subject=subject)
            for entry in rows:
                yield entry
            if len(rows) < batch:
                return
            last = rows[-1].seq

    async def verify(self, anchors: Sequence[Anchor] = (), *, batch: int = READ_BATCH) -> ChainVerification:
        """Check the chain with this process's key, and that it still holds each anchor; read `batch`
        entries at a time, each read bounded on its own, so a long log verifies."""
        check = ChainCheck(key=self._db.audit_key, anchors=anchors, previous=self._previous_keys)
        while True:
            async with self._db.reader() as session:
                result = await check.step(session, batch=batch)
            if result is not None:
                return result

    async def anchor_tick(self) -> Anchor | None:
        """Post the chain's head to `audit.anchor_channel` when `anchor_every` entries were written
        since the last anchor, or `anchor_interval` passed and anything was written; the anchor
        posted, else None.

        The head is claimed in the database first, so replicas post it once; a claim whose post
        failed is taken over after a minute (then, with two replicas failing, it may be posted twice).
        When the chain no longer holds the last posted anchor (head rewound behind it, or its entry
        rewritten), nothing is anchored: an error is logged and a warning posted to the channel,
        once per process.
        """
        channel = self._settings.anchor_channel
        if channel is None:
            return None
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            head = await anchors_table.head(session)
            last = await anchors_table.last_posted_anchor(session)
            broken = None if last is None else await anchors_table.broken_anchor(session, head, last[0])
            if broken is None:
                if head is None:
                    return None
                if last is not None:
                    anchored, posted_at = last
                    written = head.seq - anchored.seq
                    if written <= 0 or (
                        written < self._settings.anchor_every and now - posted_at < self._settings.anchor_interval
                    ):
                        return None
                if not await anchors_table.claim_anchor(session, head, at=now, retry_before=now - ANCHOR_RETRY):
                    return None
        if broken is not None:
            await self._alert(channel, broken)
            return None
        assert head is not None
        if not await self._poster.post_anchor(channel, head):
            log.warning("audit anchor #%d could not be posted; the next tick retries", head.seq)
            return None
        async with self._db.unit_of_work() as session:
            await anchors_table.mark_anchor_posted(session, head, at=self._clock.now())
        return head

    async def _alert(self, channel: str, text: str) -> None:
        """Log the broken anchor once and post it to the anchor channel once (retried until posted)."""
        if text not in self._alerts_logged:
            self._alerts_logged.add(text)
            log.error("%s (check with `guardrail audit verify --anchor …`)", text)
        if text not in self._alerts_posted and await self._poster.post_alert(channel, text):
            self._alerts_posted.add(text)
