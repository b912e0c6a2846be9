"""What the incident service hands out: plain, frozen domain objects (no Slack, no SQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.actions.base import ActionOutcome
from bot.config import Step
from bot.services.ports import ActiveFreeze, RollbackCheckStatus

UNDO_SUFFIX = ":undo"


class IncidentProblem(Exception):
    """A request the service refuses, with a message meant for the person who made it."""


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    severity: str
    status: str
    commander: str
    playbook: str | None
    declared_in: str | None
    channel_id: str | None
    channel_name: str | None
    playbook_ts: str | None
    declared_at: datetime
    header_ts: str | None = None
    freeze_id: int | None = None  # the freeze `freeze.on_incident` started for it
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    summary: str | None = None

    def playbook_closed(self) -> str | None:
        """Why this incident's playbook no longer runs (None while it does): the one rule for step
        clicks and for posting the playbook again."""
        return None if self.is_open else f"Incident #{self.id} is resolved; its playbook no longer runs."

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def subject(self) -> str:
        """The audit log subject every entry about this incident carries."""
        return f"incident:{self.id}"


@dataclass(frozen=True)
class StepState:
    """The latest run of one step (or of its undo) in one incident."""

    key: str
    status: str = "not_run"  # not_run | running | succeeded | failed | refused | interrupted
    attempt: int = 0  # runs claimed so far; buttons carry it so stale clicks are spotted
    actor: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    succeeded_at: datetime | None = None
    summary: str | None = None
    remembered: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None or self.finished_at is None or self.status in ("refused", "interrupted"):
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class StepView:
    step: Step
    state: StepState
    describe: str
    undo_state: StepState | None = None  # only for steps with an `undo:`
    undo_describe: str | None = None


@dataclass(frozen=True)
class PlaybookView:
    incident: Incident
    steps: list[StepView]
    rollback_check: RollbackCheckStatus | None = None  # the "last checked" line


@dataclass(frozen=True)
class StepRequest:
    """A click on a step's button, as the service sees it."""

    incident_id: int
    step_id: str
    actor: str
    seen_attempt: int  # the attempt count shown on the clicked message
    undo: bool = False
    confirmed_rerun: bool = False
    freeze_override: int | None = None  # id of the freeze the clicker explicitly overrode
    automatic: bool = False  # started by guardrail itself (changes.auto_rollback), not a click

    @property
    def key(self) -> str:
        return self.step_id + UNDO_SUFFIX if self.undo else self.step_id


RefusalCode = Literal["not_responder", "unknown", "resolved", "running", "stale", "order", "no_undo"]


@dataclass(frozen=True)
class Refusal:
    """Why a click did not run. `reason` is plain words (audit log, a refused step's stored summary);
    the data beside it lets `bot/slack/incidents_view.py` say the same with mentions and the step in bold."""

    code: RefusalCode
    reason: str
    unreadable: tuple[tuple[str, str], ...] = ()  # not_responder: the groups that could not be read, and why
    label: str | None = None  # the step refused, when `reason` begins with its label
    actor: str | None = None  # running: who started the run in progress


@dataclass(frozen=True)
class FreezeLift:
    """What pressing "lift the incident's freeze" did: lifted by `actor`, or it had already ended."""

    freeze_id: int
    lifted: bool
    actor: str


@dataclass(frozen=True)
class NeedsConfirmation:
    """One more explicit click is needed; `request` is what that click will send."""

    kind: Literal["rerun", "interrupted", "freeze"]
    label: str  # the step's label
    request: StepRequest
    describe: str
    freeze: ActiveFreeze | None = None
    actor: str | None = None  # rerun/interrupted: who started the earlier run
    attempt: int = 0  # interrupted: which run was interrupted


@dataclass(frozen=True)
class ClaimedRun:
    """A run this process won the claim for and now must execute."""

    incident: Incident
    step: Step
    request: StepRequest
    attempt: int
    describe: str
    started_at: datetime
    freeze_override: ActiveFreeze | None = None
    after_interrupted: bool = False  # the previous run was interrupted (its process died)
    remembered: dict[str, Any] = field(default_factory=dict)  # for an undo: what the step's run kept


@dataclass(frozen=True)
class StepResult:
    run: ClaimedRun
    outcome: ActionOutcome
    duration: timedelta
    recorded: bool = True  # False when a newer run had started after this one was interrupted
    stored: bool = True  # False when the database did not take the result in time (see RECORD_OUTCOME)
    waited: bool = False  # the database was away when the run ended; the result landed later
    retrying: bool = False  # not stored yet: a background task keeps trying while the process runs


@dataclass(frozen=True)
class InterruptedRun:
    """A run whose process died before recording how it ended: the action may or may not have run."""

    incident: Incident
    key: str
    label: str
    attempt: int
    actor: str | None
    started_at: datetime | None
    interrupted_at: datetime
    undo: bool = False


@dataclass(frozen=True)
class Resolution:
    incident: Incident
    duration: timedelta
    steps: list[StepView]
    freeze_to_lift: int | None = None  # the incident's own freeze, still in force


def elapsed(delta: timedelta) -> str:
    """`1h 05m`, `4m 10s`, `12s`: durations for people."""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
