"""Break-glass: a responder asks to let one service deploy during a window; another approves.

Lifting or extending a window from Slack bypasses the two-person rule too, so `require_responder`
guards those as well. Every refusal of a non-responder is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from bot.clock import Clock
from bot.config import GuardrailConfig, format_duration
from bot.db import freeze as tables
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.db.freeze import FreezeExemptionRecord, FreezeWindowRecord
from bot.services.access import Membership
from bot.services.freeze.models import (
    SERVICE_NAME,
    SERVICE_NAME_RULE,
    AlreadyDecided,
    Exemption,
    ExemptionStatus,
    FreezeNotice,
    FreezeRefused,
    NotFound,
    NoticeKind,
    ResponderDirectory,
    check_reason,
)
from bot.services.freeze.notices import enqueue_notice
from bot.services.freeze.records import exemption_from_row, window_from_row


class Exemptions:
    """The break-glass use cases; `FreezeService` hands them its callbacks for "something changed"."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        *,
        responders: ResponderDirectory | None,
        changed: Callable[[], None],
        kick: Callable[[], None],
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._responders = responders
        self._changed = changed
        self._kick = kick

    async def require_responder(self, user_id: str, doing: str, subject: str) -> None:
        """Refuse (and audit the attempt) unless the user is a responder."""
        membership = await self._responders.membership(user_id) if self._responders is not None else Membership(False)
        if membership.allowed:
            return
        why = "membership unknown" if membership.unreadable else "not a responder"
        async with self._db.unit_of_work() as session:
            await append_entry(
                session,
                at=self._clock.now(),
                actor=user_id,
                action="freeze.exemption_denied",
                subject=subject,
                details={"attempted": doing, "why": why},
            )
        raise FreezeRefused(f"Only responders (`access.responders`) can {doing}.", unreadable=membership.unreadable)

    async def request(self, window_id: int, *, service: str, duration: timedelta, reason: str, actor: str) -> Exemption:
        """A responder asks to let `service` deploy during window #N; another responder must approve."""
        await self.require_responder(actor, "request a freeze exemption", f"freeze#{window_id}")
        reason = check_reason(reason)
        if duration > self._config.freeze.max_duration:
            raise FreezeRefused(f"An exemption can last at most {format_duration(self._config.freeze.max_duration)}.")
        if not SERVICE_NAME.fullmatch(service):
            raise FreezeRefused(
                f"Name the service to exempt as CI names it when deploying, e.g. `api`: {SERVICE_NAME_RULE}.",
                field="service",
            )
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            window_row = found(await tables.locked_window(session, window_id=window_id), window_id)
            if window_row.cancelled_at is not None or window_row.ends_at <= now:
                raise FreezeRefused(f"Window #{window_id} is not in force any more; nothing to exempt.")
            row = FreezeExemptionRecord(
                window_id=window_id,
                service=service,
                duration_seconds=int(duration.total_seconds()),
                reason=reason,
                requested_by=actor,
                requested_at=now,
                status=ExemptionStatus.PENDING.value,
            )
            session.add(row)
            await session.flush()
            exemption = exemption_from_row(row)
            await append_entry(
                session,
                at=now,
                actor=actor,
                action="freeze.exemption_requested",
                subject=f"exemption#{exemption.id}",
                details={
                    "window": window_id,
                    "service": service,
                    "duration": format_duration(duration),
                    "reason": reason,
                },
            )
            window = window_from_row(window_row)
            await enqueue_notice(
                session, FreezeNotice(NoticeKind.EXEMPTION_REQUESTED, now, actor, window, exemption=exemption)
            )
        self._kick()
        return exemption

    async def decide(self, exemption_id: int, *, approve: bool, actor: str) -> Exemption:
        """Approve (by a responder other than the requester) or refuse (by any responder) a pending request."""
        await self.require_responder(actor, "approve or refuse freeze exemptions", f"exemption#{exemption_id}")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await tables.locked_exemption(session, exemption_id=exemption_id)
            if row is None:
                raise NotFound(f"There is no exemption #{exemption_id}.")
            if row.status != ExemptionStatus.PENDING.value:
                raise AlreadyDecided(exemption_id, row.status, row.decided_by)
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
            await append_entry(
                session,
                at=now,
                actor=actor,
                action=action,
                subject=f"exemption#{exemption_id}",
                details={
                    "window": row.window_id,
                    "service": row.service,
                    "requested_by": row.requested_by,
                    "expires_at": row.expires_at.isoformat() if row.expires_at else None,
                },
            )
            window = window_from_row(window_row)
            kind = NoticeKind.EXEMPTION_APPROVED if approve else NoticeKind.EXEMPTION_REFUSED
            await enqueue_notice(session, FreezeNotice(kind, now, actor, window, exemption=exemption))
        self._changed()
        self._kick()
        return exemption

    async def of_windows(self, window_ids: Sequence[int]) -> list[Exemption]:
        """Every exemption asked for the windows, for rendering them."""
        if not window_ids:
            return []
        async with self._db.reader() as session:
            rows = await tables.exemptions_of(session, window_ids=window_ids)
        return [exemption_from_row(r) for r in rows]


def found(row: FreezeWindowRecord | None, window_id: int) -> FreezeWindowRecord:
    if row is None:
        raise NotFound(f"There is no freeze window #{window_id} (see `/freeze list`).")
    return row
