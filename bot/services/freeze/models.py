"""Freeze domain types: windows, exemptions, deploys, and the notices announced about them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.services.access import Membership
from bot.services.ports import ActiveFreeze, DeployInfo

MAX_REASON = 500  # characters of a window's or exemption's reason
MAX_LEAD = timedelta(days=365)  # how far ahead a window may start
# A service name, the same rule for the HTTP API and break-glass exemptions (ASCII, no spaces).
SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")
SERVICE_NAME_RULE = "1-100 characters: letters, digits and . _ : / @ + - (starting with a letter or digit)"


def has_control(text: str) -> bool:
    """Whether `text` holds a control character (C0 incl. NUL, DEL, C1), a lone surrogate, or a
    line/paragraph separator: none can be stored everywhere (PostgreSQL refuses NUL, UTF-8 refuses
    surrogates) or shown on one line."""
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text)


def without_control(text: str) -> str:
    """`text` with every character `has_control` refuses replaced by a space."""
    return "".join(" " if has_control(c) else c for c in text)


def check_reason(reason: str) -> str:
    """The reason on one line; refused when empty, too long, or holding a control character."""
    reason = " ".join(reason.split())  # line breaks and tabs become spaces
    if has_control(reason):
        raise FreezeRefused("The reason contains a control character; write it as plain text.", field="reason")
    if not reason:
        raise FreezeRefused("Say why the window is needed.", field="reason")
    if len(reason) > MAX_REASON:
        raise FreezeRefused(f"The reason is longer than {MAX_REASON} characters.", field="reason")
    return reason


class FreezeRefused(Exception):
    """A request that breaks a rule; `field` names the input at fault (for form errors)."""

    def __init__(self, message: str, *, field: str | None = None, unreadable: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.unreadable = unreadable  # responder groups that could not be read, and why


class AlreadyDecided(FreezeRefused):
    """The exemption was approved or refused before this press; `decided_by` says by whom."""

    def __init__(self, exemption_id: int, status: str, decided_by: str | None) -> None:
        super().__init__(f"Exemption #{exemption_id} was already {status}{f' by {decided_by}' if decided_by else ''}.")
        self.exemption_id = exemption_id
        self.status = status
        self.decided_by = decided_by


class GateUnavailable(Exception):
    """The gate cannot know whether deploys may go ahead (the database is away): callers fail closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(FreezeRefused):
    """No window or exemption with that id."""


@dataclass(frozen=True)
class FreezeWindow:
    id: int
    environment: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    recurring: bool = False

    def is_active(self, now: datetime) -> bool:
        return self.cancelled_at is None and self.starts_at <= now < self.ends_at

    def overlaps(self, other: FreezeWindow) -> bool:
        return (
            self.id != other.id
            and self.environment == other.environment
            and self.starts_at < other.ends_at
            and other.starts_at < self.ends_at
        )

    def as_active(self) -> ActiveFreeze:
        return ActiveFreeze(
            id=self.id,
            environment=self.environment,
            reason=self.reason,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            created_by=self.created_by,
        )


class ExemptionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Exemption:
    id: int
    window_id: int
    service: str
    duration: timedelta
    reason: str
    requested_by: str
    requested_at: datetime
    status: ExemptionStatus
    decided_by: str | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = None

    def applies(self, service: str, now: datetime) -> bool:
        return (
            self.status is ExemptionStatus.APPROVED
            and self.service == service
            and self.expires_at is not None
            and now < self.expires_at
        )


@dataclass(frozen=True)
class RecordedDeploy:
    id: int
    info: DeployInfo
    exemptions: tuple[Exemption, ...] = ()
    replayed: bool = False  # an earlier request with the same Idempotency-Key recorded it


@dataclass(frozen=True)
class FreezeStatus:
    environment: str
    active: tuple[FreezeWindow, ...]
    frozen_until: datetime | None
    upcoming: FreezeWindow | None


@dataclass(frozen=True)
class GateDecision:
    """What the gate says for (environment, service): `window` is set when the deploy must wait."""

    environment: str
    window: FreezeWindow | None
    exemptions: tuple[Exemption, ...] = ()

    @property
    def frozen(self) -> bool:
        return self.window is not None


class NoticeKind(StrEnum):
    CREATED = "created"
    REMINDER = "reminder"
    STARTED = "started"
    ENDED = "ended"
    CANCELLED = "cancelled"
    EXTENDED = "extended"
    DEPLOYED = "deployed"
    EXEMPTION_REQUESTED = "exemption_requested"
    EXEMPTION_APPROVED = "exemption_approved"
    EXEMPTION_REFUSED = "exemption_refused"
    EXEMPTION_EXPIRED = "exemption_expired"


@dataclass(frozen=True)
class FreezeNotice:
    """Something to announce in the deploys channel."""

    kind: NoticeKind
    at: datetime
    actor: str = "system"
    window: FreezeWindow | None = None
    until_start: timedelta | None = None  # reminders: how long until the window starts
    extended_by: timedelta | None = None
    exemption: Exemption | None = None
    deploy: RecordedDeploy | None = None
    due_at: datetime | None = None  # scheduled notices: when it fell due (for lateness)


class ResponderDirectory(Protocol):
    async def membership(self, user_id: str) -> Membership:
        """Whether the user is one of `access.responders` (directly or through a user group)."""
        ...
