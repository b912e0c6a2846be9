"""Announcements that must happen: the outbox and its dispatcher.

A service writes the message (a kind and a JSON payload, no Slack markup) with `enqueue` in the
same transaction as the change and its audit entry, then calls `kick()` after the commit, so the
happy path posts at once. The scheduler also calls `dispatch()` every few seconds, on every
replica: it claims due rows (one conditional UPDATE; SKIP LOCKED on PostgreSQL), hands each to the
`Courier` (the Slack layer renders and posts it), and marks it posted. A failed attempt is retried
with backoff until MAX_ATTEMPTS or MAX_AGE, then the row is marked failed, logged and audited
(`outbox.gave_up`). A replica that dies mid-attempt leaves its rows to be claimed again once their
LEASE ends. An attempt that may have reached Slack (no definite answer, or the mark after it was
lost) makes the next attempt look for the message in the channel before posting again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.clock import Clock
from bot.db import outbox as table
from bot.db.audit import append_entry
from bot.db.engine import Database

log = logging.getLogger(__name__)

# A claimed row is another replica's again after LEASE: longer than a batch can take (BATCH /
# CONCURRENCY rounds of a post bounded at 10 s plus a lookup bounded at 20 s).
LEASE = timedelta(minutes=5)
BATCH = 50  # rows claimed per statement, marked per transaction
BUDGET = 20.0  # seconds one dispatch keeps claiming batches (inside the tick deadline)
CONCURRENCY = 8  # posts in flight at once
FIRST_RETRY = timedelta(seconds=5)  # backoff doubles from here ...
LONGEST_WAIT = timedelta(minutes=5)  # ... up to this
MAX_ATTEMPTS = 30
MAX_AGE = timedelta(hours=2)  # a message older than this is not posted any more
KEEP_DONE = timedelta(days=7)  # delivered rows are kept this long for inspection
FORGET_EVERY = timedelta(hours=1)

Session = table.Session  # what services name in annotations


@dataclass(frozen=True)
class OutboxMessage:
    """One claimed message, as the courier gets it."""

    id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    attempt: int
    look_first: bool  # an earlier attempt may have reached Slack: look before posting again


@dataclass(frozen=True)
class Delivered:
    """Where the message is now; `found` when an earlier attempt had posted it after all."""

    channel: str | None = None
    ts: str | None = None
    found: bool = False
    skipped: bool = False  # nothing to post (e.g. no channel configured for it)


class DeliveryFailed(Exception):
    """The courier could not deliver; `maybe_posted` when the message may nevertheless have arrived."""

    def __init__(self, reason: str, *, maybe_posted: bool, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_posted = maybe_posted
        self.permanent = permanent  # retrying cannot help (an unknown kind, a payload it cannot read)


@dataclass(frozen=True)
class _Done:
    row_id: int
    status: str
    channel: str | None = None
    ts: str | None = None


class Courier(Protocol):
    async def deliver(self, message: OutboxMessage) -> Delivered:
        """Render and post the message (looking for it first when `look_first`); raise DeliveryFailed."""
        ...


async def enqueue(
    session: Session, *, kind: str, payload: dict[str, Any], at: datetime, expires_at: datetime | None = None
) -> int:
    """Add a message to the outbox inside the caller's unit of work (so it commits with the change)."""
    return await table.enqueue(session, kind=kind, payload=payload, at=at, expires_at=expires_at)


async def enqueue_many(
    session: Session, messages: Sequence[tuple[str, dict[str, Any], datetime, datetime | None]]
) -> None:
    """Add many messages (kind, payload, at, expires_at) in one statement, inside the caller's unit of work."""
    await table.enqueue_many(session, messages=messages)


def backoff(attempt: int) -> timedelta:
    """How long to wait after the `attempt`-th failed attempt."""
    wait: timedelta = FIRST_RETRY * (2 ** min(max(attempt - 1, 0), 20))
    return min(wait, LONGEST_WAIT)


class Outbox:
    """The dispatcher. Without a courier (the CLI) rows wait for a process that has one."""

    def __init__(self, db: Database, clock: Clock, *, courier: Courier | None = None) -> None:
        self._db = db
        self._clock = clock
        self.courier = courier
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._closed = False
        self._forgotten_at: datetime | None = None

    def kick(self) -> None:
        """Dispatch now in the background (coalesced); call after committing an `enqueue`."""
        if self.courier is None or self._closed:
            return
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="outbox:kick")

    async def _drain(self) -> None:
        while self._again and not self._closed:
            self._again = False
            try:
                await self.dispatch()
            except Exception:
                log.exception("outbox dispatch failed; the scheduler retries from database state")

    async def settle(self) -> None:
        """Wait until the background dispatch started by `kick()` is over."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def dispatch(self) -> int:
        """Claim and deliver the due messages (batch after batch for up to BUDGET seconds; the next
        tick takes the rest); how many this call delivered. Safe on every replica."""
        courier = self.courier
        if courier is None:
            return 0
        await self._forget_old()
        delivered = 0
        gate = asyncio.Semaphore(CONCURRENCY)
        loop = asyncio.get_running_loop()
        stop_claiming_at = loop.time() + BUDGET
        while loop.time() < stop_claiming_at:
            now = self._clock.now()
            async with self._db.unit_of_work() as session:
                rows = await table.claim_due(session, now=now, lease_until=now + LEASE, limit=BATCH)
            if not rows:
                return delivered
            results = await asyncio.gather(*(self._attempt(courier, row, gate) for row in rows))
            done = [r for r in results if r is not None]
            delivered += sum(1 for r in done if r.status == table.POSTED)
            await self._mark(done)
            if len(rows) < BATCH:
                return delivered
        return delivered

    async def _forget_old(self) -> None:
        now = self._clock.now()
        if self._forgotten_at is not None and self._forgotten_at <= now < self._forgotten_at + FORGET_EVERY:
            return
        self._forgotten_at = now
        async with self._db.unit_of_work() as session:
            await table.forget_done_before(session, cutoff=now - KEEP_DONE)

    async def _attempt(self, courier: Courier, row: table.ClaimedRow, gate: asyncio.Semaphore) -> _Done | None:
        """One attempt; what to mark when it is over (failures are recorded here, one by one)."""
        now = self._clock.now()
        if row.expires_at is not None and now >= row.expires_at:
            return _Done(row.id, table.EXPIRED)
        message = OutboxMessage(row.id, row.kind, row.payload, row.created_at, row.attempts, row.look_first)
        try:
            async with gate:
                outcome = await courier.deliver(message)
        except DeliveryFailed as exc:
            await self._failed(
                row, exc.reason, maybe_posted=row.look_first or exc.maybe_posted, permanent=exc.permanent
            )
            return None
        except Exception as exc:  # a courier bug or an unexpected error: it may have posted
            log.exception("delivering outbox message %s (%s) failed", row.id, row.kind)
            await self._failed(row, f"{type(exc).__name__}: {exc}", maybe_posted=True)
            return None
        return _Done(row.id, table.SKIPPED if outcome.skipped else table.POSTED, outcome.channel, outcome.ts)

    async def _mark(self, done: list[_Done]) -> None:
        """Mark a batch's delivered rows in one transaction. If the database is away, the rows stay
        claimed; once their lease ends they are taken again, and that attempt finds each message in
        the channel instead of posting it twice."""
        if not done:
            return
        at = self._clock.now()
        try:
            async with self._db.unit_of_work() as session:
                await table.finish_many(session, at=at, done=[(d.row_id, d.status, d.channel, d.ts) for d in done])
        except Exception as exc:
            log.warning(
                "outbox messages %s were delivered but could not be marked (%s); each will be looked "
                "for in the channel before any new attempt",
                [d.row_id for d in done],
                type(exc).__name__,
            )

    async def _failed(self, row: table.ClaimedRow, reason: str, *, maybe_posted: bool, permanent: bool = False) -> None:
        try:
            await self._record_failure(row, reason, maybe_posted=maybe_posted, permanent=permanent)
        except Exception as exc:  # the row stays claimed and is taken again when its lease ends
            log.warning("could not record the failed attempt at outbox message %s (%s)", row.id, type(exc).__name__)

    async def _record_failure(self, row: table.ClaimedRow, reason: str, *, maybe_posted: bool, permanent: bool) -> None:
        now = self._clock.now()
        if permanent or row.attempts >= MAX_ATTEMPTS or now - row.created_at >= MAX_AGE:
            async with self._db.unit_of_work() as session:
                if await table.finish(session, row_id=row.id, status=table.FAILED, at=now, error=reason):
                    await append_entry(
                        session,
                        at=now,
                        actor="system",
                        action="outbox.gave_up",
                        subject=f"outbox#{row.id}",
                        details={"kind": row.kind, "attempts": row.attempts, "error": reason[:300]},
                    )
            log.error(
                "gave up posting outbox message %s (%s) after %d attempt(s): %s", row.id, row.kind, row.attempts, reason
            )
            return
        wait = backoff(row.attempts)
        log.warning(
            "posting outbox message %s (%s) failed (attempt %d): %s; retrying in %ss",
            row.id,
            row.kind,
            row.attempts,
            reason,
            int(wait.total_seconds()),
        )
        async with self._db.unit_of_work() as session:
            await table.retry_later(session, row_id=row.id, due_at=now + wait, maybe_posted=maybe_posted, error=reason)

    async def aclose(self) -> None:
        """Stop kicking and let a running dispatch finish its current step (bounded)."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
