"""The scheduler tick: recurring windows, reminders, starts, ends and exemption expiry, from database state.

Every due (window, event) is claimed with an insert-or-ignore row in the same transaction as its
audit entry and its outbox message, so replicas never both enqueue it. On PostgreSQL the due rows
are also locked with SKIP LOCKED, so replicas share the work. Posting, retrying and "exactly once
in the channel" are the outbox's (bot.services.outbox); the ticker kicks it after each batch.
Claims left unposted by a version before the outbox (notice JSON, no `posted_at`) are handed to
the outbox once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import GuardrailConfig
from bot.db import freeze as tables
from bot.db.audit import NewEntry, append_entries, append_entry
from bot.db.engine import Database
from bot.services.freeze import schedule
from bot.services.freeze.models import MAX_REASON, ExemptionStatus, FreezeNotice, FreezeWindow, NoticeKind
from bot.services.freeze.records import exemption_from_row, window_details, window_from_row

RECURRING_EVERY = timedelta(minutes=1)  # how often the tick materializes recurring windows
RECURRING_HORIZON = timedelta(days=1)  # ... this far beyond the longest reminder
END_CATCH_UP = timedelta(days=1)  # an end missed longer ago than this is not announced
TICK_BATCH = 200  # due windows claimed per transaction
LEGACY_ATTEMPTS = 5  # a pre-outbox claim tried this often was given up on then

Enqueue = Callable[[tables.Session, Sequence[FreezeNotice]], Awaitable[None]]


class FreezeTicker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        *,
        enqueue: Enqueue,
        kick: Callable[[], None],
        on_change: Callable[[], None],
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._enqueue = enqueue
        self._kick = kick
        self._on_change = on_change
        self._materialized_at: datetime | None = None
        self._legacy_checked = False

    @property
    def _reminders(self) -> list[timedelta]:
        return list(self._config.freeze.reminders)

    async def tick(self) -> int:
        """Materialize recurring windows, then announce every due reminder/start/end and exemption expiry.

        Safe to run on every replica at once; returns how many notices this call handed to the outbox.
        """
        now = self._clock.now()
        if (
            self._materialized_at is None
            or now - self._materialized_at >= RECURRING_EVERY
            or now < self._materialized_at
        ):
            await self.materialize_recurring(now)
            self._materialized_at = now
        enqueued = 0
        while True:
            count, claimed = await self._announce_batch(now)
            enqueued += claimed
            if claimed:
                self._kick()
            if count < TICK_BATCH:
                break
        async with self._db.reader() as session:
            expired_ids = await tables.lapsed_exemption_ids(session, status=ExemptionStatus.APPROVED.value, now=now)
        expired = sum([await self._expire(exemption_id, now) for exemption_id in expired_ids])
        if not self._legacy_checked:
            expired += await self._adopt_legacy_claims(now)
            self._legacy_checked = True
        if expired:
            self._kick()
        return enqueued + expired

    async def seconds_to_next_event(self) -> float | None:
        async with self._db.reader() as session:
            due = await tables.next_event_at(session)
        return None if due is None else (due - self._clock.now()).total_seconds()

    async def _adopt_legacy_claims(self, now: datetime) -> int:
        """Hand claims a pre-outbox version left unposted to the outbox (once per process; idempotent:
        each is marked posted in the same transaction)."""
        adopted = 0
        async with self._db.unit_of_work() as session:
            for row in await tables.unposted_announcements(
                session, claimed_before=now, max_attempts=LEGACY_ATTEMPTS, limit=TICK_BATCH
            ):
                if row.notice is None or not await tables.reclaim_announcement(
                    session, key=row.key, seen_at=row.at, at=now
                ):
                    continue
                await tables.mark_posted(session, keys=[row.key], at=now)
                notice = await _notice_from_json(session, row.notice)
                if notice is not None:
                    await self._enqueue(session, [notice])
                    adopted += 1
        return adopted

    async def _announce_batch(self, now: datetime) -> tuple[int, int]:
        """Claim the due events of up to TICK_BATCH windows in one transaction, enqueueing their
        notices; (windows looked at, notices enqueued).

        On PostgreSQL, rows another replica is processing are skipped (SKIP LOCKED), so replicas
        share the work; either way the claims make every announcement happen once.
        """
        async with self._db.unit_of_work() as session:
            rows = await tables.due_windows(session, now=now, limit=TICK_BATCH)
            due: list[tuple[str, bool, FreezeNotice]] = []
            for row in rows:
                window = window_from_row(row)
                for event in schedule.due_events(window, self._reminders, now):
                    post = event.post and not (event.kind is NoticeKind.ENDED and now - window.ends_at > END_CATCH_UP)
                    due.append(
                        (
                            event.key,
                            post,
                            FreezeNotice(
                                event.kind, now, "system", window, until_start=event.until_start, due_at=event.due_at
                            ),
                        )
                    )
                row.next_event_at = schedule.next_event_at(window, self._reminders, now)
                session.add(row)
            # One statement claims the batch, three append its audit entries (one chain lock, hashes
            # chained in memory), one writes its outbox messages: a few statements per batch, not per notice.
            claimed = await tables.claim_announcements(session, keys=[key for key, _, _ in due], at=now)
            chosen = [(key, notice) for key, post, notice in due if post and key[:200] in claimed]
            await append_entries(session, at=now, entries=[_announced(key, notice) for key, notice in chosen])
            await self._enqueue(session, [notice for _, notice in chosen])
        return len(rows), len(chosen)

    async def _expire(self, exemption_id: int, now: datetime) -> int:
        async with self._db.unit_of_work() as session:
            row = await tables.locked_exemption(session, exemption_id=exemption_id)
            if row is None or row.status != ExemptionStatus.APPROVED.value:
                return 0
            row.status = ExemptionStatus.EXPIRED.value
            session.add(row)
            exemption = exemption_from_row(row)
            window_row = await tables.window_by_id(session, window_id=row.window_id)
            window = window_from_row(window_row) if window_row is not None else None
            notice = FreezeNotice(NoticeKind.EXEMPTION_EXPIRED, now, "system", window, exemption=exemption)
            key = f"x{exemption_id}:expired"
            if not await tables.claim_announcement(session, key=key, at=now):
                return 0
            await append_entry(
                session,
                at=now,
                actor="system",
                action="freeze.exemption_expired",
                subject=f"exemption#{exemption_id}",
                details={"window": row.window_id, "service": row.service},
            )
            await self._enqueue(session, [notice])
        self._on_change()
        return 1

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

    async def _materialize(
        self, key: str, name: str, reason: str | None, env: str, start: datetime, duration: timedelta, now: datetime
    ) -> int:
        window = FreezeWindow(
            id=0,
            environment=env,
            reason=reason or name,
            starts_at=start,
            ends_at=start + duration,
            created_by="system",
            created_at=now,
            recurring=True,
        )
        values: dict[str, object] = {
            "environment": env,
            "reason": window.reason[:MAX_REASON],
            "starts_at": start,
            "ends_at": window.ends_at,
            "created_by": f"recurring:{name}"[:100],
            "created_at": now,
            "recurring_key": key,
            "next_event_at": schedule.first_event_at(window, self._reminders),
        }
        async with self._db.unit_of_work() as session:
            window_id = await tables.insert_recurring(session, values=values)
            if window_id is None:
                return 0
            await append_entry(
                session,
                at=now,
                actor="system",
                action="freeze.created",
                subject=f"freeze#{window_id}",
                details={**window_details(window), "recurring": name},
            )
        self._on_change()
        return 1


def _announced(key: str, notice: FreezeNotice) -> NewEntry:
    assert notice.window is not None  # the ticker announces windows' events only
    return NewEntry("system", "freeze.announced", f"freeze#{notice.window.id}", {"kind": notice.kind.value, "key": key})


async def _notice_from_json(session: tables.Session, text: str) -> FreezeNotice | None:
    """A pre-outbox claim's notice (ids and times; the rows are re-read)."""
    data: dict[str, Any] = json.loads(text)
    window_row = await tables.window_by_id(session, window_id=data["window"]) if data.get("window") else None
    exemption_row = (
        await tables.exemption_by_id(session, exemption_id=data["exemption"]) if data.get("exemption") else None
    )
    if window_row is None and exemption_row is None:
        return None
    return FreezeNotice(
        NoticeKind(data["kind"]),
        datetime.fromisoformat(data["at"]),
        "system",
        window_from_row(window_row) if window_row is not None else None,
        until_start=timedelta(seconds=data["until_start"]) if data.get("until_start") is not None else None,
        exemption=exemption_from_row(exemption_row) if exemption_row is not None else None,
        due_at=datetime.fromisoformat(data["due_at"]) if data.get("due_at") else None,
    )
