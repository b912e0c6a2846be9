"""Freeze windows: create, list, cancel, extend, enforce (the gate), and the scheduler tick.

Break-glass is in `exemptions`; recording deploys (which the gate refuses while frozen) is
`bot.services.deploys`.

Each state change runs in one unit of work with its audit entry and its announcement, written to
the outbox (bot.services.outbox) in the same transaction; the outbox posts it after the commit and
retries until Slack took it. Scheduled announcements are claimed in the database first
(insert-or-ignore), so with several replicas one enqueues each of them (see `ticker`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import GuardrailConfig, format_duration
from bot.db import freeze as tables
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.db.freeze import FreezeWindowRecord
from bot.services.freeze import schedule
from bot.services.freeze.exemptions import Exemptions, found
from bot.services.freeze.gate import DEFAULT_TIMEOUT as GATE_TIMEOUT
from bot.services.freeze.gate import GateSnapshot
from bot.services.freeze.listing import UpcomingSnapshot
from bot.services.freeze.models import (
    MAX_LEAD,
    Exemption,
    FreezeNotice,
    FreezeRefused,
    FreezeStatus,
    FreezeWindow,
    GateDecision,
    NotFound,
    NoticeKind,
    ResponderDirectory,
    check_reason,
)
from bot.services.freeze.notices import enqueue_notice, enqueue_notices
from bot.services.freeze.records import gate_state, window_details, window_from_row
from bot.services.freeze.ticker import FreezeTicker
from bot.services.outbox import Outbox
from bot.services.ports import ActiveFreeze

log = logging.getLogger(__name__)


class FreezeService:
    """Implements `FreezeLookup` (bot.services.ports) for the other features."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        *,
        outbox: Outbox | None = None,
        responders: ResponderDirectory | None = None,
        gate_timeout: float = GATE_TIMEOUT,
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self.outbox = outbox
        self.responders = responders
        self._gate = GateSnapshot(self._load_gate_state, clock, timeout=gate_timeout)
        self._listing = UpcomingSnapshot(self._load_upcoming, timeout=db.bounds.operation)
        self._exemptions = Exemptions(db, clock, config, responders=responders, changed=self._changed, kick=self._kick)
        self._ticker = FreezeTicker(
            db, clock, config, enqueue=enqueue_notices, kick=self._kick, on_change=self._changed
        )

    @property
    def environments(self) -> list[str]:
        return list(self._config.freeze.environments)

    @property
    def gate_timeout(self) -> float:
        """Seconds the gate (and deploy recording) waits for the database before answering unavailable."""
        return self._gate.timeout

    @property
    def _reminders(self) -> list[timedelta]:
        return list(self._config.freeze.reminders)

    # --- validation ------------------------------------------------------------------------

    def environment(self, name: str | None) -> str:
        """The named environment, or the default one; refused when unknown."""
        if name is None or name == "":
            return self._config.freeze.default_environment
        if name not in self.environments:
            raise FreezeRefused(
                f"Unknown environment `{name}`: use one of {', '.join(self.environments)}.", field="environment"
            )
        return name

    def _check_span(self, starts_at: datetime, ends_at: datetime, now: datetime) -> None:
        if starts_at - now > MAX_LEAD:
            raise FreezeRefused(
                f"The window starts more than a year ahead (at most {MAX_LEAD.days} days from now).", field="starts_at"
            )
        if ends_at <= starts_at:
            raise FreezeRefused("The window ends before it starts.", field="ends_at")
        if ends_at <= now:
            raise FreezeRefused("The window ends in the past.", field="ends_at")
        longest = self._config.freeze.max_duration
        if ends_at - starts_at > longest:
            raise FreezeRefused(
                f"The window lasts {format_duration(ends_at - starts_at)}, longer than "
                f"`freeze.max_duration` ({format_duration(longest)}).",
                field="ends_at",
            )

    # --- windows ---------------------------------------------------------------------------

    def validate(self, *, starts_at: datetime, ends_at: datetime, environment: str | None, reason: str) -> None:
        """Refuse (FreezeRefused naming the field) what `create` would refuse, without touching the database."""
        self.environment(environment)
        check_reason(reason)
        self._check_span(starts_at, ends_at, self._clock.now())

    async def create(
        self, *, starts_at: datetime, ends_at: datetime, environment: str | None, reason: str, actor: str
    ) -> FreezeWindow:
        """Create a window (overlaps are allowed; anyone may freeze) and announce it."""
        now = self._clock.now()
        env = self.environment(environment)
        reason = check_reason(reason)
        self._check_span(starts_at, ends_at, now)
        async with self._db.unit_of_work() as session:
            row = FreezeWindowRecord(
                environment=env, reason=reason, starts_at=starts_at, ends_at=ends_at, created_by=actor, created_at=now
            )
            session.add(row)
            await session.flush()
            window = window_from_row(row)
            row.next_event_at = schedule.first_event_at(window, self._reminders)
            await append_entry(
                session,
                at=now,
                actor=actor,
                action="freeze.created",
                subject=f"freeze#{window.id}",
                details=window_details(window),
            )
            await enqueue_notice(session, FreezeNotice(NoticeKind.CREATED, now, actor, window))
        self._changed()
        self._kick()
        return window

    async def get(self, window_id: int) -> FreezeWindow:
        async with self._db.reader() as session:
            row = await tables.window_by_id(session, window_id=window_id)
        if row is None:
            raise NotFound(f"There is no freeze window #{window_id} (see `/freeze list`).")
        return window_from_row(row)

    async def upcoming(self) -> list[FreezeWindow]:
        """Active and upcoming windows, soonest first (from a snapshot at most a second old; see
        `listing`)."""
        return await self._listing.windows(self._clock.now())

    def upcoming_if_ready(self) -> list[FreezeWindow] | None:
        """`upcoming()` when it needs no database read (the snapshot is fresh), else None: a Slack
        command can then answer in its acknowledgement instead of a second request."""
        return self._listing.ready(self._clock.now())

    def status_if_ready(self, environment: str | None = None) -> FreezeStatus | None:
        """`status()` when it needs no database read, else None (unknown environment: `FreezeRefused`)."""
        env = self.environment(environment)
        now = self._clock.now()
        windows = self._listing.ready(now)
        return None if windows is None else _status(env, [w for w in windows if w.environment == env], now)

    async def _load_upcoming(self, now: datetime) -> list[FreezeWindow]:
        async with self._db.reader() as session:
            rows = await tables.upcoming_windows(session, now=now)
        return [window_from_row(r) for r in rows]

    def _changed(self) -> None:
        """A write went through this process: the gate and the listing re-read the database."""
        self._gate.invalidate()
        self._listing.invalidate()

    async def status(self, environment: str | None = None) -> FreezeStatus:
        env = self.environment(environment)
        now = self._clock.now()
        return _status(env, [w for w in await self.upcoming() if w.environment == env], now)

    async def cancel(self, window_id: int, *, actor: str, require_responder: bool = False) -> FreezeWindow:
        """Cancel a window. From Slack (`require_responder`), only a responder may: lifting a freeze
        bypasses the two-person break-glass, so it is as privileged as an exemption."""
        if require_responder:
            await self._exemptions.require_responder(actor, "cancel a freeze window", f"freeze#{window_id}")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await _changeable_row(session, window_id, now)
            row.cancelled_at, row.cancelled_by, row.next_event_at = now, actor, None
            session.add(row)
            window = window_from_row(row)
            await append_entry(
                session,
                at=now,
                actor=actor,
                action="freeze.cancelled",
                subject=f"freeze#{window_id}",
                details=window_details(window),
            )
            await enqueue_notice(session, FreezeNotice(NoticeKind.CANCELLED, now, actor, window))
        self._changed()
        self._kick()
        return window

    async def extend(
        self, window_id: int, by: timedelta, *, actor: str, require_responder: bool = False
    ) -> FreezeWindow:
        """Extend a window by `by`; from Slack (`require_responder`) only a responder may."""
        if require_responder:
            await self._exemptions.require_responder(actor, "extend a freeze window", f"freeze#{window_id}")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await _changeable_row(session, window_id, now, advice="; create a new one instead")
            try:
                new_end = row.ends_at + by
            except OverflowError:
                raise FreezeRefused(f"Extending by {format_duration(by)} is out of range.", field="ends_at") from None
            self._check_span(row.starts_at, new_end, now)
            previous_end = row.ends_at
            row.ends_at = new_end
            window = window_from_row(row)
            row.next_event_at = schedule.next_event_at(window, self._reminders, now)
            session.add(row)
            await append_entry(
                session,
                at=now,
                actor=actor,
                action="freeze.extended",
                subject=f"freeze#{window_id}",
                details={
                    **window_details(window),
                    "previous_ends_at": previous_end.isoformat(),
                    "extended_by": format_duration(by),
                },
            )
            await enqueue_notice(session, FreezeNotice(NoticeKind.EXTENDED, now, actor, window, extended_by=by))
        self._changed()
        self._kick()
        return window

    # --- the gate (FreezeLookup) -----------------------------------------------------------

    async def _load_gate_state(self, at: datetime, until: datetime) -> tuple[list[FreezeWindow], list[Exemption]]:
        async with self._db.reader(bound=self._gate.timeout) as session:
            return await gate_state(session, at=at, until=until)

    async def gate(self, environment: str, *, service: str | None = None) -> GateDecision:
        """Whether a deploy of `service` to `environment` must wait now (unknown environment: refused;
        `GateUnavailable` when the database cannot tell within the gate's timeout)."""
        return await self._gate.decide(self.environment(environment), service)

    async def active_window(self, environment: str, *, service: str | None = None) -> ActiveFreeze | None:
        """FreezeLookup: the window in force (None when not frozen, or when the service is exempt)."""
        if environment not in self.environments:
            return None
        decision = await self.gate(environment, service=service)
        return decision.window.as_active() if decision.window else None

    # --- break-glass (see `exemptions`) ----------------------------------------------------

    async def request_exemption(
        self, window_id: int, *, service: str, duration: timedelta, reason: str, actor: str
    ) -> Exemption:
        """A responder asks to let `service` deploy during window #N; another responder must approve."""
        return await self._exemptions.request(window_id, service=service, duration=duration, reason=reason, actor=actor)

    async def decide_exemption(self, exemption_id: int, *, approve: bool, actor: str) -> Exemption:
        """Approve (by a responder other than the requester) or refuse (by any responder) a pending request."""
        return await self._exemptions.decide(exemption_id, approve=approve, actor=actor)

    # --- the scheduler tick ------------------------------------------------------------------

    async def tick(self) -> int:
        """Announce what fell due (see FreezeTicker); safe on every replica at once."""
        return await self._ticker.tick()

    async def seconds_to_next_event(self) -> float | None:
        """Seconds until the next reminder, start or end falls due (≤ 0: due now); None: nothing scheduled."""
        return await self._ticker.seconds_to_next_event()

    async def materialize_recurring(self, now: datetime) -> int:
        return await self._ticker.materialize_recurring(now)

    def _kick(self) -> None:
        if self.outbox is not None:
            self.outbox.kick()

    # --- reading for rendering ------------------------------------------------------------

    async def exemptions_for(self, window_ids: Sequence[int]) -> list[Exemption]:
        return await self._exemptions.of_windows(window_ids)


async def _changeable_row(
    session: tables.Session, window_id: int, now: datetime, *, advice: str = ""
) -> FreezeWindowRecord:
    """The window's row, locked for the change; refused when it was cancelled or has ended."""
    row = found(await tables.locked_window(session, window_id=window_id), window_id)
    if row.cancelled_at is not None:
        raise FreezeRefused(f"Window #{window_id} was already cancelled{advice}.")
    if row.ends_at <= now:
        raise FreezeRefused(f"Window #{window_id} has already ended{advice}.")
    return row


def _status(environment: str, windows: list[FreezeWindow], now: datetime) -> FreezeStatus:
    active = tuple(w for w in windows if w.is_active(now))
    upcoming = next((w for w in windows if w.starts_at > now), None)
    return FreezeStatus(environment, active, _frozen_until(active, windows), upcoming)


def _frozen_until(active: Sequence[FreezeWindow], windows: Sequence[FreezeWindow]) -> datetime | None:
    """The end of the continuous frozen stretch starting now (overlapping and adjacent windows chain)."""
    if not active:
        return None
    until = max(w.ends_at for w in active)
    changed = True
    while changed:
        changed = False
        for w in windows:
            if w.starts_at <= until < w.ends_at:
                until, changed = w.ends_at, True
    return until
