"""The scheduler tick: recurring windows, reminders, starts, ends and exemption expiry, from database state.

Every due (window, event) is claimed with an insert-or-ignore row in the same transaction as its
audit entry, before anything is posted, so replicas never both post it. On PostgreSQL the due rows
are also locked with SKIP LOCKED, so replicas share the work. A claim is marked posted once Slack
took the notice; one still unmarked RETRY_AFTER later (the post failed, or the replica died
between claiming and marking) is taken again by one replica and re-posted — effectively once: a
crash after posting but before marking can, rarely, post it twice. Posts run concurrently
(POST_CONCURRENCY), so one slow Slack call does not hold up the rest of the tick.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import GuardrailConfig
from bot.db import freeze as tables
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.services import freeze_schedule as schedule
from bot.services.freeze_rows import exemption_from_row, window_details, window_from_row
from bot.services.freeze_types import MAX_REASON, ExemptionStatus, FreezeNotice, FreezeWindow, NoticeKind

RECURRING_EVERY = timedelta(minutes=1)     # how often the tick materializes recurring windows
RECURRING_HORIZON = timedelta(days=1)      # ... this far beyond the longest reminder
END_CATCH_UP = timedelta(days=1)           # an end missed longer ago than this is not announced
TICK_BATCH = 200                           # due windows claimed per transaction
RETRY_AFTER = timedelta(minutes=1)         # a claim not marked posted this long after it was taken is retried
MAX_ATTEMPTS = 5                           # ... at most this many times in all
POST_CONCURRENCY = 8                       # notices posted at once

Claim = tuple[str, FreezeNotice]           # (claim key, what to post)


class FreezeTicker:
    def __init__(self, db: Database, clock: Clock, config: GuardrailConfig, *,
                 notify: Callable[[FreezeNotice], Awaitable[bool | None]], on_change: Callable[[], None]) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._notify = notify
        self._on_change = on_change
        self._materialized_at: datetime | None = None

    @property
    def _reminders(self) -> list[timedelta]:
        return list(self._config.freeze.reminders)

    async def tick(self) -> int:
        """Materialize recurring windows, then announce every due reminder/start/end and exemption expiry.

        Safe to run on every replica at once; returns how many notices this call posted.
        """
        now = self._clock.now()
        if self._materialized_at is None or now - self._materialized_at >= RECURRING_EVERY \
                or now < self._materialized_at:
            await self.materialize_recurring(now)
            self._materialized_at = now
        posted = 0
        while True:
            count, claims = await self._announce_batch(now)
            posted += await self._post(claims, now)
            if count < TICK_BATCH:
                break
        async with self._db.reader() as session:
            expired_ids = await tables.lapsed_exemption_ids(session, status=ExemptionStatus.APPROVED.value, now=now)
        expired = [claim for exemption_id in expired_ids if (claim := await self._expire(exemption_id, now))]
        posted += await self._post(expired, now)
        posted += await self._post(await self._reclaim(now), now)
        return posted

    async def _post(self, claims: Sequence[Claim], now: datetime) -> int:
        """Post concurrently; mark what Slack took as posted (the rest is retried later). How many were."""
        if not claims:
            return 0
        gate = asyncio.Semaphore(POST_CONCURRENCY)

        async def post(notice: FreezeNotice) -> bool:
            async with gate:
                return await self._notify(notice) is not False

        taken = await asyncio.gather(*(post(notice) for _, notice in claims))
        keys = [key for (key, _), ok in zip(claims, taken, strict=True) if ok]
        async with self._db.unit_of_work() as session:
            await tables.mark_posted(session, keys=keys, at=now)
        return len(keys)

    async def _reclaim(self, now: datetime) -> list[Claim]:
        """Take again the claims left unposted for RETRY_AFTER (by this replica or one that died)."""
        claims: list[Claim] = []
        async with self._db.unit_of_work() as session:
            for row in await tables.unposted_announcements(session, claimed_before=now - RETRY_AFTER,
                                                           max_attempts=MAX_ATTEMPTS, limit=TICK_BATCH):
                if row.notice is None or not await tables.reclaim_announcement(session, key=row.key,
                                                                               seen_at=row.at, at=now):
                    continue
                notice = await _notice_from_json(session, row.notice)
                if notice is not None:
                    claims.append((row.key, notice))
        return claims

    async def _announce_batch(self, now: datetime) -> tuple[int, list[Claim]]:
        """Claim the due events of up to TICK_BATCH windows in one transaction; the notices to post.

        On PostgreSQL, rows another replica is processing are skipped (SKIP LOCKED), so replicas
        share the work; either way the claims make every announcement happen once.
        """
        claims: list[Claim] = []
        async with self._db.unit_of_work() as session:
            rows = await tables.due_windows(session, now=now, limit=TICK_BATCH)
            for row in rows:
                window = window_from_row(row)
                for event in schedule.due_events(window, self._reminders, now):
                    if event.kind is NoticeKind.ENDED and now - window.ends_at > END_CATCH_UP:
                        event = replace(event, post=False)
                    notice = FreezeNotice(event.kind, now, "system", window, until_start=event.until_start,
                                          due_at=event.due_at)
                    claimed = await tables.claim_announcement(session, key=event.key, at=now,
                                                              notice=_notice_json(notice) if event.post else None)
                    if claimed and event.post:
                        await append_entry(session, at=now, actor="system", action="freeze.announced",
                                           subject=f"freeze#{window.id}",
                                           details={"kind": event.kind.value, "key": event.key})
                        claims.append((event.key, notice))
                row.next_event_at = schedule.next_event_at(window, self._reminders, now)
                session.add(row)
        return len(rows), claims

    async def _expire(self, exemption_id: int, now: datetime) -> Claim | None:
        async with self._db.unit_of_work() as session:
            row = await tables.locked_exemption(session, exemption_id=exemption_id)
            if row is None or row.status != ExemptionStatus.APPROVED.value:
                return None
            row.status = ExemptionStatus.EXPIRED.value
            session.add(row)
            exemption = exemption_from_row(row)
            window_row = await tables.window_by_id(session, window_id=row.window_id)
            window = window_from_row(window_row) if window_row is not None else None
            notice = FreezeNotice(NoticeKind.EXEMPTION_EXPIRED, now, "system", window, exemption=exemption)
            key = f"x{exemption_id}:expired"
            if not await tables.claim_announcement(session, key=key, at=now, notice=_notice_json(notice)):
                return None
            await append_entry(session, at=now, actor="system", action="freeze.exemption_expired",
                               subject=f"exemption#{exemption_id}", details={"window": row.window_id,
                                                                             "service": row.service})
        self._on_change()
        return key, notice

    async def materialize_recurring(self, now: datetime) -> int:
        """Turn `freeze.recurring` rules into windows from (now - duration) to the horizon; idempotent."""
        tz = self._config.tz
        horizon = now + max(self._reminders, default=timedelta()) + RECURRING_HORIZON
        wanted: dict[str, tuple[str, str | None, str, datetime, timedelta]] = {}
        for rule in self._config.freeze.recurring:
            for env in self._config.freeze.window_environments(rule):
                for start in schedule.occurrences(rule.cron, tz, now - rule.duration, horizon):
                    start = start.astimezone(UTC)
                    key = f"{rule.name}|{env}|{start.isoformat()}"[:200]
                    wanted[key] = (rule.name, rule.reason, env, start, rule.duration)
        if not wanted:
            return 0
        # Look first, so the common case (already there) does not burn ids of a PostgreSQL sequence.
        async with self._db.reader() as session:
            existing = await tables.existing_recurring_keys(session, keys=list(wanted))
        created = 0
        for key, (name, reason, env, start, duration) in sorted(wanted.items(), key=lambda kv: kv[1][3]):
            if key not in existing:
                created += await self._materialize(key, name, reason, env, start, duration, now)
        return created

    async def _materialize(self, key: str, name: str, reason: str | None, env: str, start: datetime,
                           duration: timedelta, now: datetime) -> int:
        window = FreezeWindow(id=0, environment=env, reason=reason or name, starts_at=start,
                              ends_at=start + duration, created_by="system", created_at=now, recurring=True)
        values: dict[str, object] = {
            "environment": env, "reason": window.reason[:MAX_REASON], "starts_at": start, "ends_at": window.ends_at,
            "created_by": f"recurring:{name}"[:100], "created_at": now, "recurring_key": key,
            "next_event_at": schedule.first_event_at(window, self._reminders),
        }
        async with self._db.unit_of_work() as session:
            window_id = await tables.insert_recurring(session, values=values)
            if window_id is None:
                return 0
            await append_entry(session, at=now, actor="system", action="freeze.created",
                               subject=f"freeze#{window_id}",
                               details={**window_details(window), "recurring": name})
        self._on_change()
        return 1


def _notice_json(notice: FreezeNotice) -> str:
    """What a scheduled notice needs to be posted again: ids and times (the rows are re-read)."""
    return json.dumps({
        "kind": notice.kind.value, "at": notice.at.isoformat(),
        "window": notice.window.id if notice.window else None,
        "exemption": notice.exemption.id if notice.exemption else None,
        "until_start": notice.until_start.total_seconds() if notice.until_start is not None else None,
        "due_at": notice.due_at.isoformat() if notice.due_at else None})


async def _notice_from_json(session: tables.Session, text: str) -> FreezeNotice | None:
    data: dict[str, Any] = json.loads(text)
    window_row = await tables.window_by_id(session, window_id=data["window"]) if data.get("window") else None
    exemption_row = (await tables.exemption_by_id(session, exemption_id=data["exemption"])
                     if data.get("exemption") else None)
    if window_row is None and exemption_row is None:
        return None
    return FreezeNotice(
        NoticeKind(data["kind"]), datetime.fromisoformat(data["at"]), "system",
        window_from_row(window_row) if window_row is not None else None,
        until_start=timedelta(seconds=data["until_start"]) if data.get("until_start") is not None else None,
        exemption=exemption_from_row(exemption_row) if exemption_row is not None else None,
        due_at=datetime.fromisoformat(data["due_at"]) if data.get("due_at") else None)
