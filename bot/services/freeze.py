"""Freeze windows: create, list, cancel, extend, enforce (the gate), break-glass, and the scheduler tick.

Each state change runs in one unit of work with its audit entry and its announcement, written to
the outbox (bot.services.outbox) in the same transaction; the outbox posts it after the commit and
retries until Slack took it. Scheduled announcements are claimed in the database first
(insert-or-ignore), so with several replicas one enqueues each of them (see freeze_ticker).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import GuardrailConfig, format_duration
from bot.db import freeze as tables
from bot.db.audit import AuditKeyMissing, append_entry
from bot.db.engine import Database
from bot.db.freeze import FreezeExemptionRecord, FreezeWindowRecord
from bot.resilience import DatabaseTimeout, give_up_after
from bot.services import freeze_schedule as schedule
from bot.services.access import Membership
from bot.services.freeze_gate import DEFAULT_TIMEOUT as GATE_TIMEOUT
from bot.services.freeze_gate import GateSnapshot, decide
from bot.services.freeze_listing import UpcomingSnapshot
from bot.services.freeze_notices import expires_at, outbox_kind, to_payload
from bot.services.freeze_rows import exemption_from_row, window_details, window_from_row
from bot.services.freeze_ticker import FreezeTicker
from bot.services.freeze_types import (
    MAX_LEAD,
    MAX_REASON,
    SERVICE_NAME,
    SERVICE_NAME_RULE,
    Exemption,
    ExemptionStatus,
    FreezeNotice,
    FreezeRefused,
    FreezeStatus,
    FreezeWindow,
    GateDecision,
    GateUnavailable,
    NotFound,
    NoticeKind,
    RecordedDeploy,
    ResponderDirectory,
    has_control,
)
from bot.services.outbox import Outbox, enqueue_many
from bot.services.outbox import enqueue as enqueue_message
from bot.services.ports import ActiveFreeze, DeployInfo

log = logging.getLogger(__name__)



class FreezeService:
    """Implements `FreezeLookup` and `DeployHistory` (bot.services.ports) for the other features."""

    def __init__(self, db: Database, clock: Clock, config: GuardrailConfig, *,
                 outbox: Outbox | None = None, responders: ResponderDirectory | None = None,
                 gate_timeout: float = GATE_TIMEOUT) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self.outbox = outbox
        self.responders = responders
        self._gate = GateSnapshot(self._load_gate_state, clock, timeout=gate_timeout)
        self._listing = UpcomingSnapshot(self._load_upcoming, timeout=db.bounds.operation)
        self._ticker = FreezeTicker(db, clock, config, enqueue=enqueue_notices, kick=self._kick,
                                    on_change=self._changed)

    @property
    def environments(self) -> list[str]:
        return list(self._config.freeze.environments)

    @property
    def _reminders(self) -> list[timedelta]:
        return list(self._config.freeze.reminders)

    # --- validation ------------------------------------------------------------------------

    def environment(self, name: str | None) -> str:
        """The named environment, or the default one; refused when unknown."""
        if name is None or name == "":
            return self._config.freeze.default_environment
        if name not in self.environments:
            raise FreezeRefused(f"Unknown environment `{name}`: use one of {', '.join(self.environments)}.",
                                field="environment")
        return name

    def _check_span(self, starts_at: datetime, ends_at: datetime, now: datetime) -> None:
        if starts_at - now > MAX_LEAD:
            raise FreezeRefused(f"The window starts more than a year ahead (at most {MAX_LEAD.days} days from now).",
                                field="starts_at")
        if ends_at <= starts_at:
            raise FreezeRefused("The window ends before it starts.", field="ends_at")
        if ends_at <= now:
            raise FreezeRefused("The window ends in the past.", field="ends_at")
        longest = self._config.freeze.max_duration
        if ends_at - starts_at > longest:
            raise FreezeRefused(f"The window lasts {format_duration(ends_at - starts_at)}, longer than "
                                f"`freeze.max_duration` ({format_duration(longest)}).", field="ends_at")

    @staticmethod
    def _check_reason(reason: str) -> str:
        reason = " ".join(reason.split())  # line breaks and tabs become spaces
        if has_control(reason):
            raise FreezeRefused("The reason contains a control character; write it as plain text.", field="reason")
        if not reason:
            raise FreezeRefused("Say why the window is needed.", field="reason")
        if len(reason) > MAX_REASON:
            raise FreezeRefused(f"The reason is longer than {MAX_REASON} characters.", field="reason")
        return reason

    # --- windows ---------------------------------------------------------------------------

    def validate(self, *, starts_at: datetime, ends_at: datetime, environment: str | None, reason: str) -> None:
        """Refuse (FreezeRefused naming the field) what `create` would refuse, without touching the database."""
        self.environment(environment)
        self._check_reason(reason)
        self._check_span(starts_at, ends_at, self._clock.now())

    async def create(self, *, starts_at: datetime, ends_at: datetime, environment: str | None, reason: str,
                     actor: str) -> FreezeWindow:
        """Create a window (overlaps are allowed; anyone may freeze) and announce it."""
        now = self._clock.now()
        env = self.environment(environment)
        reason = self._check_reason(reason)
        self._check_span(starts_at, ends_at, now)
        async with self._db.unit_of_work() as session:
            row = FreezeWindowRecord(environment=env, reason=reason, starts_at=starts_at, ends_at=ends_at,
                                     created_by=actor, created_at=now)
            session.add(row)
            await session.flush()
            window = window_from_row(row)
            row.next_event_at = schedule.first_event_at(window, self._reminders)
            await append_entry(session, at=now, actor=actor, action="freeze.created", subject=f"freeze#{window.id}",
                               details=window_details(window))
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
        `freeze_listing`)."""
        return await self._listing.windows(self._clock.now())

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
        windows = [w for w in await self.upcoming() if w.environment == env]
        active = tuple(w for w in windows if w.is_active(now))
        upcoming = next((w for w in windows if w.starts_at > now), None)
        return FreezeStatus(env, active, _frozen_until(active, windows), upcoming)

    async def cancel(self, window_id: int, *, actor: str, require_responder: bool = False) -> FreezeWindow:
        """Cancel a window. From Slack (`require_responder`), only a responder may: lifting a freeze
        bypasses the two-person break-glass, so it is as privileged as an exemption."""
        if require_responder:
            await self._require_responder(actor, "cancel a freeze window", f"freeze#{window_id}")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await _changeable_row(session, window_id, now)
            row.cancelled_at, row.cancelled_by, row.next_event_at = now, actor, None
            session.add(row)
            window = window_from_row(row)
            await append_entry(session, at=now, actor=actor, action="freeze.cancelled", subject=f"freeze#{window_id}",
                               details=window_details(window))
            await enqueue_notice(session, FreezeNotice(NoticeKind.CANCELLED, now, actor, window))
        self._changed()
        self._kick()
        return window

    async def extend(self, window_id: int, by: timedelta, *, actor: str,
                     require_responder: bool = False) -> FreezeWindow:
        """Extend a window by `by`; from Slack (`require_responder`) only a responder may."""
        if require_responder:
            await self._require_responder(actor, "extend a freeze window", f"freeze#{window_id}")
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
            await append_entry(session, at=now, actor=actor, action="freeze.extended", subject=f"freeze#{window_id}",
                               details={**window_details(window), "previous_ends_at": previous_end.isoformat(),
                                        "extended_by": format_duration(by)})
            await enqueue_notice(session, FreezeNotice(NoticeKind.EXTENDED, now, actor, window, extended_by=by))
        self._changed()
        self._kick()
        return window

    # --- the gate (FreezeLookup) -----------------------------------------------------------

    async def _load_gate_state(self, at: datetime, until: datetime) -> tuple[list[FreezeWindow], list[Exemption]]:
        async with self._db.reader(bound=self._gate.timeout) as session:
            return await _gate_state(session, at=at, until=until)

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

    # --- deploys (DeployHistory) -------------------------------------------------------------

    async def record_deploy(self, *, environment: str, service: str, version: str, actor: str,
                            url: str | None = None, idempotency_key: str | None = None
                            ) -> RecordedDeploy | GateDecision:
        """Record a deploy, or return the blocking decision when the environment is frozen.

        The announcement is written to the outbox with the deploy and posted in the background, so
        CI never waits on Slack (a replay is not announced again). With an
        `idempotency_key` the same request recorded before is returned (`replayed`), not recorded
        again; the same key with different fields is refused. Bounded like the gate:
        `GateUnavailable` when the database cannot answer within its timeout.
        """
        env = self.environment(environment)
        seconds = self._gate.timeout
        try:
            return await give_up_after(seconds, self._record_deploy(env, service, version, actor, url,
                                                                    idempotency_key))
        except FreezeRefused:
            raise
        except (TimeoutError, DatabaseTimeout):
            raise GateUnavailable(f"the database did not answer within {seconds:g}s; the deploy may or may "
                                  "not have been recorded: retry with the same Idempotency-Key") from None
        except AuditKeyMissing as exc:
            log.error("recording a deploy failed: %s", exc)
            raise GateUnavailable(f"{exc}; nothing was recorded") from None
        except Exception as exc:
            log.warning("recording a deploy failed: %s: %s", type(exc).__name__, str(exc)[:200])
            raise GateUnavailable(f"the database could not be written ({type(exc).__name__}); "
                                  "nothing was recorded") from None

    async def _record_deploy(self, env: str, service: str, version: str, actor: str, url: str | None,
                             idempotency_key: str | None) -> RecordedDeploy | GateDecision:
        now = self._clock.now()
        digest = hashlib.sha256(json.dumps([env, service, version, actor, url]).encode()).hexdigest()
        if idempotency_key is not None:
            earlier = await self._replay(idempotency_key, digest)
            if earlier is not None:
                return earlier
        async with self._db.unit_of_work(bound=self._gate.timeout) as session:
            windows, exemptions = await _gate_state(session, at=now, until=now, environment=env)
            decision = decide(env, service, windows, exemptions, now)
            if decision.window is not None:
                await append_entry(session, at=now, actor=actor, action="freeze.deploy_blocked",
                                   subject=f"freeze#{decision.window.id}",
                                   details={"environment": env, "service": service, "version": version})
                return decision
            used = decision.exemptions[0] if decision.exemptions else None
            deploy_id = await tables.insert_deploy(session, values={
                "environment": env, "service": service, "version": version, "actor": actor, "url": url, "at": now,
                "exemption_id": used.id if used else None, "idempotency_key": idempotency_key,
                "request_digest": digest if idempotency_key is not None else None})
            if deploy_id is not None:
                details: dict[str, Any] = {"environment": env, "service": service, "version": version, "url": url}
                if decision.exemptions:
                    details["exemptions"] = [e.id for e in decision.exemptions]
                if idempotency_key is not None:
                    details["idempotency_key"] = idempotency_key
                await append_entry(session, at=now, actor=actor, action="freeze.deployed",
                                   subject=f"deploy#{deploy_id}", details=details)
                for exemption in decision.exemptions:
                    await append_entry(session, at=now, actor=actor, action="freeze.exemption_used",
                                       subject=f"exemption#{exemption.id}",
                                       details={"deploy": deploy_id, "window": exemption.window_id})
                recorded = RecordedDeploy(deploy_id, DeployInfo(env, service, version, actor, now, url),
                                          decision.exemptions)
                await enqueue_notice(session, FreezeNotice(NoticeKind.DEPLOYED, now, actor, deploy=recorded))
        if deploy_id is not None:
            self._kick()
            return recorded
        # A concurrent request with the same key recorded it between our look and our insert.
        assert idempotency_key is not None
        earlier = await self._replay(idempotency_key, digest)
        assert earlier is not None
        return earlier

    async def _replay(self, key: str, digest: str) -> RecordedDeploy | None:
        """The deploy recorded earlier under `key` (refused if its fields differ), or None."""
        async with self._db.reader(bound=self._gate.timeout) as session:
            row = await tables.deploy_by_key(session, key=key)
            if row is None:
                return None
            if row.request_digest != digest:
                raise FreezeRefused("This Idempotency-Key was used for a different deploy; use a new key.",
                                    field="idempotency_key")
            used = await tables.exemption_by_id(session, exemption_id=row.exemption_id) if row.exemption_id else None
        assert row.id is not None
        return RecordedDeploy(row.id, DeployInfo(row.environment, row.service, row.version, row.actor, row.at,
                                                 row.url),
                              (exemption_from_row(used),) if used is not None else (), replayed=True)

    async def last_deploys(self, environment: str | None = None) -> list[DeployInfo]:
        """DeployHistory: the newest deploy of each (environment, service), newest first."""
        async with self._db.reader() as session:
            rows = await tables.latest_deploys(session, environment=environment)
        return [DeployInfo(r.environment, r.service, r.version, r.actor, r.at, r.url) for r in rows]

    # --- break-glass -------------------------------------------------------------------------

    async def _require_responder(self, user_id: str, doing: str, subject: str) -> None:
        """Refuse (and audit the attempt) unless the user is a responder."""
        membership = await self.responders.membership(user_id) if self.responders is not None else Membership(False)
        if membership.allowed:
            return
        why = "membership unknown" if membership.unreadable else "not a responder"
        async with self._db.unit_of_work() as session:
            await append_entry(session, at=self._clock.now(), actor=user_id, action="freeze.exemption_denied",
                               subject=subject, details={"attempted": doing, "why": why})
        raise FreezeRefused(membership.refusal(f"Only responders (`access.responders`) can {doing}."))

    async def request_exemption(self, window_id: int, *, service: str, duration: timedelta, reason: str,
                                actor: str) -> Exemption:
        """A responder asks to let `service` deploy during window #N; another responder must approve."""
        await self._require_responder(actor, "request a freeze exemption", f"freeze#{window_id}")
        reason = self._check_reason(reason)
        if duration > self._config.freeze.max_duration:
            raise FreezeRefused(f"An exemption can last at most {format_duration(self._config.freeze.max_duration)}.")
        if not SERVICE_NAME.fullmatch(service):
            raise FreezeRefused(f"Name the service to exempt as CI names it when deploying, e.g. `api`: "
                                f"{SERVICE_NAME_RULE}.", field="service")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            window_row = _found(await tables.locked_window(session, window_id=window_id), window_id)
            if window_row.cancelled_at is not None or window_row.ends_at <= now:
                raise FreezeRefused(f"Window #{window_id} is not in force any more; nothing to exempt.")
            row = FreezeExemptionRecord(window_id=window_id, service=service,
                                        duration_seconds=int(duration.total_seconds()), reason=reason,
                                        requested_by=actor, requested_at=now, status=ExemptionStatus.PENDING.value)
            session.add(row)
            await session.flush()
            exemption = exemption_from_row(row)
            await append_entry(session, at=now, actor=actor, action="freeze.exemption_requested",
                               subject=f"exemption#{exemption.id}",
                               details={"window": window_id, "service": service, "duration": format_duration(duration),
                                        "reason": reason})
            window = window_from_row(window_row)
            await enqueue_notice(session, FreezeNotice(NoticeKind.EXEMPTION_REQUESTED, now, actor, window,
                                                       exemption=exemption))
        self._kick()
        return exemption

    async def decide_exemption(self, exemption_id: int, *, approve: bool, actor: str) -> Exemption:
        """Approve (by a responder other than the requester) or refuse (by any responder) a pending request."""
        await self._require_responder(actor, "approve or refuse freeze exemptions", f"exemption#{exemption_id}")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await tables.locked_exemption(session, exemption_id=exemption_id)
            if row is None:
                raise NotFound(f"There is no exemption #{exemption_id}.")
            if row.status != ExemptionStatus.PENDING.value:
                raise FreezeRefused(f"Exemption #{exemption_id} was already {row.status}"
                                    f"{f' by <@{row.decided_by}>' if row.decided_by else ''}.")
            if approve and row.requested_by == actor:
                raise FreezeRefused("A different responder must approve: you asked for this exemption.")
            window_row = await tables.window_by_id(session, window_id=row.window_id)
            assert window_row is not None
            if approve and (window_row.cancelled_at is not None or window_row.ends_at <= now):
                raise FreezeRefused(f"Window #{row.window_id} is not in force any more; nothing to approve.")
            row.decided_by, row.decided_at = actor, now
            row.status = (ExemptionStatus.APPROVED if approve else ExemptionStatus.REFUSED).value
            if approve:
                row.expires_at = now + timedelta(seconds=row.duration_seconds)
            session.add(row)
            exemption = exemption_from_row(row)
            action = "freeze.exemption_approved" if approve else "freeze.exemption_refused"
            await append_entry(session, at=now, actor=actor, action=action, subject=f"exemption#{exemption_id}",
                               details={"window": row.window_id, "service": row.service,
                                        "requested_by": row.requested_by,
                                        "expires_at": row.expires_at.isoformat() if row.expires_at else None})
            window = window_from_row(window_row)
            kind = NoticeKind.EXEMPTION_APPROVED if approve else NoticeKind.EXEMPTION_REFUSED
            await enqueue_notice(session, FreezeNotice(kind, now, actor, window, exemption=exemption))
        self._changed()
        self._kick()
        return exemption

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
        if not window_ids:
            return []
        async with self._db.reader() as session:
            rows = await tables.exemptions_of(session, window_ids=window_ids)
        return [exemption_from_row(r) for r in rows]


async def enqueue_notice(session: tables.Session, notice: FreezeNotice) -> None:
    """Write the notice to the outbox, in the caller's unit of work."""
    await enqueue_message(session, kind=outbox_kind(notice), payload=to_payload(notice), at=notice.at,
                          expires_at=expires_at(notice))


async def enqueue_notices(session: tables.Session, notices: Sequence[FreezeNotice]) -> None:
    """Write many notices to the outbox with one statement, in the caller's unit of work."""
    await enqueue_many(session, [(outbox_kind(n), to_payload(n), n.at, expires_at(n)) for n in notices])


async def _gate_state(session: tables.Session, *, at: datetime, until: datetime, environment: str | None = None
                      ) -> tuple[list[FreezeWindow], list[Exemption]]:
    """Windows in force at `at` or starting before `until`, with their approved exemptions."""
    windows = [window_from_row(r) for r in
               await tables.windows_in_force(session, at=at, until=until, environment=environment)]
    if not windows:
        return [], []
    rows = await tables.exemptions_of(session, window_ids=[w.id for w in windows],
                                      status=ExemptionStatus.APPROVED.value)
    return windows, [exemption_from_row(r) for r in rows]


async def _changeable_row(session: tables.Session, window_id: int, now: datetime, *,
                          advice: str = "") -> FreezeWindowRecord:
    """The window's row, locked for the change; refused when it was cancelled or has ended."""
    row = _found(await tables.locked_window(session, window_id=window_id), window_id)
    if row.cancelled_at is not None:
        raise FreezeRefused(f"Window #{window_id} was already cancelled{advice}.")
    if row.ends_at <= now:
        raise FreezeRefused(f"Window #{window_id} has already ended{advice}.")
    return row


def _found(row: FreezeWindowRecord | None, window_id: int) -> FreezeWindowRecord:
    if row is None:
        raise NotFound(f"There is no freeze window #{window_id} (see `/freeze list`).")
    return row


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

