"""Declaring, noting, resolving and looking up incidents. Every change is audited in its transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.actions.base import StepAction
from bot.checks.base import CheckResult, ServiceProber
from bot.clock import Clock
from bot.config import Action, GuardrailConfig, Playbook, Severity
from bot.db import audit as chain
from bot.db import incidents as tables
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.resilience import RECORD_OUTCOME, Breakers, CallPolicy
from bot.services.access import Responders
from bot.services.changes.models import LIKELY_RELATED, RecentChange
from bot.services.incidents import naming
from bot.services.incidents.leases import DEFAULT_LEASE, StepLeases
from bot.services.incidents.models import (
    UNDO_SUFFIX,
    FreezeLift,
    Incident,
    IncidentProblem,
    InterruptedRun,
    PlaybookView,
    Refusal,
    Resolution,
    StepResult,
    StepView,
)
from bot.services.incidents.postmortem import render_markdown
from bot.services.incidents.records import OpenIncidents, to_incident, to_state
from bot.services.incidents.runs import KEEP_TRYING_EVERY, StepRunner, UndoFactory
from bot.services.ports import (
    ChangeLookup,
    FreezeLookup,
    IncidentFreezer,
    OpenIncident,
    RollbackCheckLookup,
    RollbackCheckStatus,
)

ActionFactory = Callable[[Action], StepAction]
log = logging.getLogger(__name__)

MAX_TITLE = 150
MAX_NOTE = 2000
LOOKUP_TIMEOUT = 0.75  # seconds for the rollback check's "last checked" line


class RunPoster(Protocol):
    """Where a run's news that no click is waiting for goes (Slack's, when the process talks to
    Slack): the playbook as it stands now (None when it could not be read) and a line in its thread.
    Failures are the poster's to log; it never raises."""

    async def post_interrupted(self, run: InterruptedRun, playbook: PlaybookView | None) -> None: ...

    async def post_late_result(self, result: StepResult, playbook: PlaybookView | None) -> None: ...


class IncidentService:
    """Incidents and their playbooks. `steps` runs playbook steps; `responders` says who may.

    `record_outcome` and `keep_trying_every`: how a step's result is written when the database is
    away (see `bot.services.incidents.runs`); tests shorten them through `bot.runtime.Overrides`.
    `poster` hears of runs this replica marked interrupted and of results that landed late.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        build_action: ActionFactory,
        breakers: Breakers,
        *,
        freezes: FreezeLookup | None = None,
        freezer: IncidentFreezer | None = None,
        prober: ServiceProber | None = None,
        secrets: dict[str, str] | None = None,
        endpoints: dict[str, str] | None = None,
        build_undo: UndoFactory | None = None,
        responders: Responders,
        replica: str = "guardrail",
        step_lease: timedelta = DEFAULT_LEASE,
        rollbacks: RollbackCheckLookup | None = None,
        changes: ChangeLookup | None = None,
        record_outcome: CallPolicy = RECORD_OUTCOME,
        keep_trying_every: float = KEEP_TRYING_EVERY,
        poster: RunPoster | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self.responders = responders
        self.freezer = freezer
        self._poster = poster
        self.leases = StepLeases(
            db, clock, config, owner=replica, lease=step_lease, on_interrupted=self._tell_interrupted
        )
        self.steps = StepRunner(
            db,
            clock,
            config,
            build_action,
            self.responders,
            breakers,
            freezes=freezes,
            prober=prober,
            secrets=secrets or {},
            endpoints=endpoints or {},
            leases=self.leases,
            build_undo=build_undo,
            record_policy=record_outcome,
            keep_trying_every=keep_trying_every,
            on_late_record=self._tell_late_result,
        )
        self.rollbacks = rollbacks
        self.changes = changes  # "is it the deploy?"

    # -- runs whose process died -----------------------------------------------------------

    async def sweep_interrupted(self) -> list[InterruptedRun]:
        """Mark runs whose process died interrupted (once across replicas); for start-up and the scheduler."""
        return await self.leases.sweep()

    async def _tell_interrupted(self, run: InterruptedRun) -> None:
        if self._poster is not None:
            await self._poster.post_interrupted(run, await self._playbook_now(run.incident))

    async def _tell_late_result(self, result: StepResult) -> None:
        if self._poster is not None:
            await self._poster.post_late_result(result, await self._playbook_now(result.run.incident))

    async def _playbook_now(self, incident: Incident) -> PlaybookView | None:
        """The incident's playbook as the database has it now; None (logged) when it cannot be read."""
        try:
            return await self.playbook_view(await self.get(incident.id) or incident)
        except Exception:
            log.warning("could not read the playbook of incident %s", incident.id, exc_info=True)
            return None

    # -- lookups ---------------------------------------------------------------------------

    async def get(self, incident_id: int) -> Incident | None:
        async with self._db.reader() as session:
            row = await tables.get_incident(session, incident_id)
        return to_incident(row) if row is not None else None

    async def in_channel(self, channel_id: str) -> Incident | None:
        """The incident whose channel this is, or None."""
        async with self._db.reader() as session:
            row = await tables.incident_in_channel(session, channel_id)
        return to_incident(row) if row is not None else None

    async def open_incidents(self) -> list[OpenIncident]:
        """`IncidentLookup` for other features (health answers list them)."""
        return await OpenIncidents(self._db).open_incidents()

    def playbook_of(self, incident: Incident) -> Playbook | None:
        return self._config.playbook(incident.playbook) if incident.playbook else None

    async def playbook_view(self, incident: Incident) -> PlaybookView:
        """Each step with the state of its latest run (and of its undo)."""
        playbook = self.playbook_of(incident)
        async with self._db.reader() as session:
            rows = await tables.steps_of(session, incident.id)
        views: list[StepView] = []
        for step in playbook.steps if playbook else []:
            undo_key = step.id + UNDO_SUFFIX
            state = to_state(step.id, rows.get(step.id))
            # An undo is offered once the step succeeded: its own `undo:`, or (scale, rollback) a
            # reversal built from what the run remembered.
            undo = self.steps.undo_for(step, state.remembered) if state.succeeded_at is not None else None
            views.append(
                StepView(
                    step=step,
                    state=state,
                    describe=self.describe(step.action),
                    undo_state=to_state(undo_key, rows.get(undo_key)) if undo is not None else None,
                    undo_describe=self.steps.describe_built(undo) if undo is not None else None,
                )
            )
        return PlaybookView(incident=incident, steps=views, rollback_check=await self._last_rollback_check())

    async def _last_rollback_check(self) -> RollbackCheckStatus | None:
        """The "last checked" line; left out (never an error) when the lookup fails or dawdles."""
        if self.rollbacks is None:
            return None
        try:
            return await asyncio.wait_for(self.rollbacks.last_rollback_check(), timeout=LOOKUP_TIMEOUT)
        except Exception as exc:
            log.warning("playbook: rollback check lookup failed: %s: %s", type(exc).__name__, exc)
            return None

    def describe(self, action: Action) -> str:
        """What the action will do, for confirm dialogs; never raises."""
        return self.steps.describe(action)

    async def postmortem_markdown(self, incident_id: int) -> str:
        """A postmortem draft from the audit log: timeline, steps run, by whom, outcomes, durations."""
        incident = await self.get(incident_id)
        if incident is None:
            raise IncidentProblem(f"There is no incident #{incident_id}.")
        async with self._db.reader() as session:
            entries = [e async for e in chain.iterate(session, subject=incident.subject)]
        return render_markdown(
            incident, entries, self._config.tz, changes=await self.changes_before(incident.declared_at)
        )

    async def changes_before(self, moment: datetime, results: Sequence[CheckResult] = ()) -> list[RecentChange]:
        """ "Is it the deploy?": the changes in `changes.lookback` before `moment`; left out (never an
        error) when the lookup fails or dawdles."""
        if self.changes is None:
            return []
        try:
            found = await asyncio.wait_for(self.changes.recent(results=results, until=moment), timeout=LOOKUP_TIMEOUT)
        except Exception as exc:
            log.warning("incident: changes lookup failed: %s: %s", type(exc).__name__, exc)
            return []
        if any(r.status.value == "down" for r in results):
            return found
        # Nothing known to be down: the declaration itself is when things went wrong.
        return [replace(r, likely_related=timedelta(0) <= moment - r.change.at <= LIKELY_RELATED) for r in found]

    # -- changes ---------------------------------------------------------------------------

    async def declare(
        self, *, title: str, severity: str | None, commander: str, playbook: str | None, declared_in: str | None
    ) -> Incident:
        """Open an incident with `commander` in charge; the channel is attached once created."""
        title = " ".join(title.split())
        if not title:
            raise IncidentProblem("An incident needs a title, e.g. `/incident declare API returns 500s sev1`.")
        if len(title) > MAX_TITLE:
            raise IncidentProblem(f"That title is {len(title)} characters; keep it under {MAX_TITLE}.")
        level = severity or Severity.sev2.value
        if level not in {s.value for s in Severity}:
            raise IncidentProblem(f"Unknown severity `{level}`: use sev1, sev2 or sev3.")
        playbook = playbook.strip().lower() if playbook is not None else None  # names are lowercase slugs
        chosen = self._config.playbook(playbook)
        if playbook is not None and chosen is None:
            names = ", ".join(f"`{p.name}`" for p in self._config.playbooks) or "none are configured"
            raise IncidentProblem(f"There is no playbook called `{playbook}` (playbooks: {names}).")
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await tables.create_incident(
                session,
                title=title,
                severity=level,
                commander=commander,
                playbook=chosen.name if chosen else None,
                declared_in=declared_in,
                declared_at=now,
            )
            incident = to_incident(row)
            await append_entry(
                session,
                at=now,
                actor=commander,
                action="incident.declared",
                subject=incident.subject,
                details={"title": title, "severity": level, "playbook": incident.playbook, "declared_in": declared_in},
            )
        if self.freezer is not None and level in self._config.freeze.on_incident:
            incident = await self._freeze_for(incident)
        return incident

    async def _freeze_for(self, incident: Incident) -> Incident:
        """`freeze.on_incident`: freeze deploys for the incident's duration (a failure does not stop the
        declaration; it is logged and audited)."""
        assert self.freezer is not None
        environment = self._config.freeze.default_environment
        try:
            freeze = await self.freezer.freeze_for_incident(
                environment=environment,
                incident_id=incident.id,
                actor=incident.commander,
                reason=f"Incident #{incident.id}: {incident.title}",
            )
        except Exception as exc:
            log.warning("could not freeze %s for incident %s: %s", environment, incident.id, exc)
            async with self._db.unit_of_work() as session:
                await append_entry(
                    session,
                    at=self._clock.now(),
                    actor="system",
                    action="incident.freeze_failed",
                    subject=incident.subject,
                    details={"environment": environment, "error": str(exc)},
                )
            return incident
        async with self._db.unit_of_work() as session:
            row = self._found(
                await tables.set_freeze(session, incident_id=incident.id, freeze_id=freeze.id), incident.id
            )
            await append_entry(
                session,
                at=self._clock.now(),
                actor="system",
                action="incident.freeze_started",
                subject=incident.subject,
                details={"freeze": freeze.id, "environment": environment},
            )
            return to_incident(row)

    async def lift_freeze(self, incident_id: int, *, actor: str) -> Refusal | FreezeLift:
        """Lift the freeze `freeze.on_incident` started for this incident (responders only)."""
        incident = await self.get(incident_id)
        if incident is None or incident.freeze_id is None or self.freezer is None:
            return Refusal("unknown", f"Incident #{incident_id} has no freeze of its own to lift.")
        membership = await self.responders.membership(actor)
        if not membership.allowed:
            async with self._db.unit_of_work() as session:
                await append_entry(
                    session,
                    at=self._clock.now(),
                    actor=actor,
                    action="incident.freeze_lift_refused",
                    subject=incident.subject,
                    details={"freeze": incident.freeze_id},
                )
            return Refusal(
                "not_responder",
                "Only responders (`access.responders`) may lift the incident's freeze.",
                membership.unreadable,
            )
        # The freeze service audits the cancellation itself; the incident's timeline records it
        # only when this press actually lifted the freeze.
        if not await self.freezer.lift(incident.freeze_id, actor=actor):
            return FreezeLift(incident.freeze_id, lifted=False, actor=actor)
        async with self._db.unit_of_work() as session:
            await append_entry(
                session,
                at=self._clock.now(),
                actor=actor,
                action="incident.freeze_lifted",
                subject=incident.subject,
                details={"freeze": incident.freeze_id},
            )
        return FreezeLift(incident.freeze_id, lifted=True, actor=actor)

    def channel_names(self, incident: Incident) -> Iterator[str]:
        """Candidate channel names, the first free one wins (Slack answers `name_taken` for the others)."""
        day = incident.declared_at.astimezone(self._config.tz).date()
        return naming.channel_names(self._config.incidents.channel_prefix, day, incident.title)

    async def attach_channel(
        self, incident: Incident, *, channel_id: str, channel_name: str, header_ts: str | None, playbook_ts: str | None
    ) -> Incident:
        async with self._db.unit_of_work() as session:
            row = self._found(
                await tables.attach_channel(
                    session,
                    incident_id=incident.id,
                    channel_id=channel_id,
                    channel_name=channel_name,
                    header_ts=header_ts,
                    playbook_ts=playbook_ts,
                ),
                incident.id,
            )
            await append_entry(
                session,
                at=self._clock.now(),
                actor="system",
                action="incident.channel_created",
                subject=incident.subject,
                details={"channel": channel_id, "name": channel_name},
            )
            return to_incident(row)

    async def playbook_to_post_again(self, incident: Incident) -> PlaybookView:
        """`/incident playbook`: the playbook to post again; IncidentProblem when there is none to run."""
        if not incident.playbook:
            raise IncidentProblem("This incident has no playbook.")
        if (closed := incident.playbook_closed()) is not None:
            raise IncidentProblem(closed)
        return await self.playbook_view(incident)

    async def playbook_posted(self, incident: Incident, *, actor: str, ts: str, audit: bool = True) -> Incident:
        """The buttons were posted (again): step updates go to the newest copy. The first post, right
        after the channel was created, is part of declaring and not audited on its own."""
        async with self._db.unit_of_work() as session:
            row = self._found(await tables.set_playbook_ts(session, incident_id=incident.id, ts=ts), incident.id)
            if audit:
                await append_entry(
                    session,
                    at=self._clock.now(),
                    actor=actor,
                    action="incident.playbook_posted",
                    subject=incident.subject,
                    details={"ts": ts},
                )
            return to_incident(row)

    async def note(self, incident: Incident, *, actor: str, text: str) -> None:
        text = text.strip()
        if not text:
            raise IncidentProblem("A note needs text: `/incident note restarted the worker by hand`.")
        if len(text) > MAX_NOTE:
            raise IncidentProblem(f"That note is {len(text)} characters; keep it under {MAX_NOTE}.")
        async with self._db.unit_of_work() as session:
            await append_entry(
                session,
                at=self._clock.now(),
                actor=actor,
                action="incident.note",
                subject=incident.subject,
                details={"text": text},
            )

    async def resolve(self, incident: Incident, *, actor: str, summary: str | None) -> Resolution:
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await tables.resolve_incident(
                session, incident_id=incident.id, actor=actor, at=now, summary=(summary or "").strip() or None
            )
            if row is None:
                raise IncidentProblem(f"Incident #{incident.id} was already resolved.")
            resolved = to_incident(row)
            await append_entry(
                session,
                at=now,
                actor=actor,
                action="incident.resolved",
                subject=incident.subject,
                details={"summary": row.summary, "duration_s": int((now - incident.declared_at).total_seconds())},
            )
        view = await self.playbook_view(resolved)
        return Resolution(
            incident=resolved,
            duration=now - incident.declared_at,
            steps=view.steps,
            freeze_to_lift=await self._own_freeze_in_force(resolved),
        )

    async def _own_freeze_in_force(self, incident: Incident) -> int | None:
        if incident.freeze_id is None:
            return None
        lookup = self.steps.freezes
        if lookup is None:
            return incident.freeze_id  # cannot tell: offer it; lifting an ended freeze is harmless
        active = await lookup.active_window(self._config.freeze.default_environment)
        return incident.freeze_id if active is not None and active.id == incident.freeze_id else None

    @staticmethod
    def _found(row: tables.IncidentRecord | None, incident_id: int) -> tables.IncidentRecord:
        if row is None:
            raise IncidentProblem(f"There is no incident #{incident_id}.")
        return row
