"""Running playbook steps: who may, in what order, under which freeze — and exactly once.

`claim()` decides and, when the click may run, claims the run in the database in the same
transaction as its audit entry (see `bot.db.incidents.claim_step`). Only the caller that won
the claim calls `execute()`, which holds the run's lease (see `leases`) while the action runs and
until its result is recorded. `preview()` is the dry run: it changes nothing.

Once an action ran, its result is an outside fact: `execute()` retries writing it (with its audit
entry, one transaction) under `RECORD_OUTCOME` for minutes, keeping it in memory meanwhile, so a
database blip while a rollback runs does not turn into "running forever". If the database is
still out of reach after that, the result is handed to a background task that keeps trying every
`keep_trying_every` seconds (holding the run's lease) until it lands or the process stops; a
result that lands late replaces "interrupted" and `on_late_record` hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.actions._masking import mask_text
from bot.actions.base import ActionContext, ActionOutcome, Progress, StepAction
from bot.checks.base import ServiceProber
from bot.clock import Clock
from bot.config import Action, GuardrailConfig, Step, format_duration
from bot.db import incidents as tables
from bot.db.audit import append_entry
from bot.db.engine import Database, unreachable
from bot.resilience import RECORD_OUTCOME, Breakers, CallPolicy, OutboundTimeout, call_outbound, give_up_after
from bot.services.access import Responders
from bot.services.incidents.leases import StepLeases, one_line
from bot.services.incidents.models import (
    ClaimedRun,
    Incident,
    NeedsConfirmation,
    Refusal,
    StepRequest,
    StepResult,
    StepState,
)
from bot.services.incidents.records import Session, to_incident, to_state
from bot.services.ports import FreezeLookup

log = logging.getLogger(__name__)

ActionFactory = Callable[[Action], StepAction]
LateListener = Callable[[StepResult], Awaitable[None]]
# How to reverse a step that succeeded, from what its run remembered (None: nothing to undo).
UndoFactory = Callable[[Step, Mapping[str, Any]], StepAction | None]

# A step that has not finished after this long is recorded as failed (its task is cancelled).
STEP_DEADLINE = timedelta(minutes=15)
# After `RECORD_OUTCOME` gave up on an unreachable database: one more try this often, in the background.
KEEP_TRYING_EVERY = 30.0


async def _no_progress(_: str) -> None:
    return None


def failure_text(exc: BaseException) -> str:
    """`HTTPStatusError: … for url 'https://…?token=***'` — an exception as people may see it: its
    text can hold whatever the action had in hand (a URL with its token), so it is masked."""
    return mask_text(f"{type(exc).__name__}: {exc}")


def _worth_retrying(exc: BaseException) -> bool:
    """A write of a result is retried only while the database is out of reach; a result the
    database refuses (bad data, a constraint) would be refused again."""
    return isinstance(exc, OutboundTimeout) or unreachable(exc)


class StepRunner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        build_action: ActionFactory,
        responders: Responders,
        breakers: Breakers,
        *,
        freezes: FreezeLookup | None,
        prober: ServiceProber | None,
        secrets: dict[str, str],
        endpoints: dict[str, str],
        leases: StepLeases,
        build_undo: UndoFactory | None = None,
        record_policy: CallPolicy = RECORD_OUTCOME,
        keep_trying_every: float = KEEP_TRYING_EVERY,
        on_late_record: LateListener | None = None,
    ) -> None:
        """`on_late_record` hears of each result the background retrier got into the database at last."""
        self._db = db
        self._clock = clock
        self._config = config
        self.build_action = build_action
        self.build_undo = build_undo
        self._responders = responders
        self._breakers = breakers
        self.freezes = freezes
        self._prober = prober
        self._secrets = secrets
        self._endpoints = endpoints
        self.deadline = STEP_DEADLINE
        self.leases = leases
        self._record_policy = record_policy
        self._keep_trying_every = keep_trying_every
        self._keeping: set[asyncio.Task[None]] = set()
        self._on_late_record = on_late_record

    async def close(self) -> None:
        """Stop the background retriers (the process is exiting); each says loudly what it still held."""
        for task in list(self._keeping):
            task.cancel()
        for task in list(self._keeping):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the decision and the claim --------------------------------------------------------

    async def claim(self, request: StepRequest) -> Refusal | NeedsConfirmation | ClaimedRun:
        """Decide whether this click may run the step; if so, claim the run atomically."""
        # An automatic run (changes.auto_rollback: true) was allowed by whoever wrote the configuration.
        membership = await self._responders.membership(request.actor) if not request.automatic else None
        if membership is not None and not membership.allowed:
            return await self._refuse(
                request,
                Refusal(
                    "not_responder",
                    "Only responders (`access.responders`) may run playbook steps. "
                    "Nothing ran; the attempt was recorded in the audit log.",
                    membership.unreadable,
                ),
            )
        freeze = None
        if self.freezes is not None:
            freeze = await self.freezes.active_window(self._config.freeze.default_environment)
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            found = await self._load(session, request)
            if isinstance(found, Refusal):
                await self._audit_refusal(session, request, found)
                return found
            incident, step, action = found
            if freeze is not None and freeze.id == incident.freeze_id:
                freeze = None  # the incident's own freeze (freeze.on_incident) never blocks its fixes
            await tables.ensure_step(session, incident.id, request.key)
            rows = await tables.steps_of(session, incident.id)
            state = to_state(request.key, rows.get(request.key))
            problem = self._order_problem(step, request, rows) if not request.undo else None
            if problem is not None:
                await tables.mark_refused(
                    session,
                    incident_id=incident.id,
                    step_key=request.key,
                    actor=request.actor,
                    reason=problem.reason,
                    at=now,
                )
                await self._audit_refusal(session, request, problem)
                return problem
            if state.status == tables.RUNNING or state.attempt != request.seen_attempt:
                busy = self._busy(state)
                await self._audit_refusal(session, request, busy)
                return busy
            describe = self.describe_built(action)
            interrupted = state.status == tables.INTERRUPTED
            if interrupted and not request.confirmed_rerun:
                return NeedsConfirmation(
                    "interrupted",
                    step.label,
                    replace(request, confirmed_rerun=True),
                    describe,
                    actor=state.actor,
                    attempt=state.attempt,
                )
            if step.changes_production and state.succeeded_at is not None and not request.confirmed_rerun:
                return NeedsConfirmation(
                    "rerun", step.label, replace(request, confirmed_rerun=True), describe, actor=state.actor
                )
            if step.changes_production and freeze is not None and request.freeze_override != freeze.id:
                return NeedsConfirmation(
                    "freeze", step.label, replace(request, freeze_override=freeze.id), describe, freeze
                )
            attempt = await tables.claim_step(
                session,
                incident_id=incident.id,
                step_key=request.key,
                seen_attempt=request.seen_attempt,
                actor=request.actor,
                at=now,
                owner=self.leases.owner,
                lease_until=self.leases.until(now),
            )
            if attempt is None:  # lost the race to another click, replica or redelivery
                busy = Refusal("running", "Someone else's click got there first; see the playbook message.")
                await self._audit_refusal(session, request, busy)
                return busy
            override = freeze if step.changes_production and freeze is not None else None
            await append_entry(
                session,
                at=now,
                actor=request.actor,
                action="incident.step.started",
                subject=incident.subject,
                details={
                    "step": request.key,
                    "label": step.label,
                    "attempt": attempt,
                    "what": describe,
                    "changes_production": step.changes_production,
                    "after_interrupted": interrupted,
                },
            )
            if override is not None:
                await append_entry(
                    session,
                    at=now,
                    actor=request.actor,
                    action="incident.freeze_override",
                    subject=incident.subject,
                    details={
                        "step": request.key,
                        "freeze": override.id,
                        "environment": override.environment,
                        "reason": override.reason,
                    },
                )
            remembered = to_state(step.id, rows.get(step.id)).remembered if request.undo else {}
        return ClaimedRun(
            incident=incident,
            step=step,
            request=request,
            attempt=attempt,
            describe=describe,
            started_at=now,
            freeze_override=override,
            after_interrupted=interrupted,
            remembered=remembered,
        )

    def undo_for(self, step: Step, remembered: Mapping[str, Any]) -> StepAction | None:
        """The step's own `undo:` action; else, from `build_undo`, a reversal built from what the
        run remembered (scale back to the previous quantity, roll forward to the previous release)."""
        try:
            if step.undo is not None:
                return self.build_action(step.undo)
            return self.build_undo(step, remembered) if self.build_undo is not None else None
        except Exception:
            log.exception("could not build the undo of step %s", step.id)
            return None

    async def _load(self, session: Session, request: StepRequest) -> tuple[Incident, Step, StepAction] | Refusal:
        row = await tables.get_incident(session, request.incident_id)
        if row is None:
            return Refusal("unknown", f"There is no incident #{request.incident_id}.")
        incident = to_incident(row)
        if (closed := incident.playbook_closed()) is not None:
            return Refusal("resolved", closed)
        playbook = self._config.playbook(incident.playbook) if incident.playbook else None
        step = playbook.step(request.step_id) if playbook else None
        if step is None:
            return Refusal("unknown", f"The playbook has no step `{request.step_id}` (any more).")
        if not request.undo:
            return incident, step, self.build_action(step.action)
        main = await tables.steps_of(session, incident.id)
        if main.get(step.id) is None or main[step.id].succeeded_at is None:
            return Refusal("no_undo", f"{step.label} has not succeeded, so there is nothing to undo.", label=step.label)
        undo = self.undo_for(step, to_state(step.id, main.get(step.id)).remembered)
        if undo is None:
            return Refusal("no_undo", f"{step.label} has no undo.", label=step.label)
        return incident, step, undo

    def _order_problem(
        self, step: Step, request: StepRequest, rows: dict[str, tables.IncidentStepRecord]
    ) -> Refusal | None:
        """`after:` — each named step must have succeeded in this incident, recently enough."""
        freshness = self._config.incidents.verify_freshness
        cutoff = self._clock.now() - freshness
        for before in step.after:
            row = rows.get(before)
            if row is None or row.succeeded_at is None:
                return Refusal(
                    "order",
                    f"{step.label} runs only after `{before}` has succeeded in this "
                    f"incident, and it has not yet. Run `{before}` first.",
                    label=step.label,
                )
            if row.succeeded_at < cutoff:
                return Refusal(
                    "order",
                    f"{step.label} needs `{before}` to have succeeded within the last "
                    f"{format_duration(freshness)}; it last succeeded longer ago. Run `{before}` "
                    "again first.",
                    label=step.label,
                )
        return None

    def _busy(self, state: StepState) -> Refusal:
        if state.status == tables.RUNNING:
            return Refusal(
                "running",
                f"This step is already running (started by {state.actor}). It will not be started twice.",
                actor=state.actor,
            )
        return Refusal(
            "stale",
            "This step ran since that button was drawn (a repeated or delayed click). "
            "Nothing ran; check the updated playbook message.",
        )

    async def _refuse(self, request: StepRequest, refusal: Refusal) -> Refusal:
        async with self._db.unit_of_work() as session:
            await self._audit_refusal(session, request, refusal)
        return refusal

    async def _audit_refusal(self, session: Session, request: StepRequest, refusal: Refusal) -> None:
        await append_entry(
            session,
            at=self._clock.now(),
            actor=request.actor,
            action="incident.step.refused",
            subject=f"incident:{request.incident_id}",
            details={"step": request.key, "code": refusal.code, "reason": refusal.reason},
        )

    # -- doing it --------------------------------------------------------------------------

    async def execute(self, run: ClaimedRun, progress: Progress = _no_progress) -> StepResult:
        """Run a claimed step's action once and record how it ended (audited), holding its lease."""
        async with self.leases.held(run.incident.id, run.request.key, run.attempt):
            outcome = await self._act(run, progress)
            return await self._record(run, outcome, progress)

    async def _act(self, run: ClaimedRun, progress: Progress) -> ActionOutcome:
        ctx = self._context(run.request, run.incident.id, run.remembered, progress)
        try:
            action = self.undo_for(run.step, run.remembered) if run.request.undo else self.build_action(run.step.action)
            if action is None:
                raise LookupError("there is nothing to undo")
            return await asyncio.wait_for(action.run(ctx), timeout=self.deadline.total_seconds())
        except TimeoutError:
            return ActionOutcome(False, f"did not finish within {format_duration(self.deadline)}; it was stopped")
        except Exception as exc:  # an action must not take the bot down; its failure is the outcome
            summary = failure_text(exc)
            # The masked text and where it was raised — never the exception's own message.
            log.error(
                "step %s of incident %s raised %s\n%s",
                run.request.key,
                run.incident.id,
                summary,
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            return ActionOutcome(False, summary)

    async def _record(self, run: ClaimedRun, outcome: ActionOutcome, progress: Progress) -> StepResult:
        """Write the outcome and its audit entry in one transaction, retried under `record_policy`
        while the database is away. The outcome stays in memory (here) until it lands."""
        now = self._clock.now()
        duration = now - run.started_at
        tries = 0

        async def write() -> bool:
            nonlocal tries
            tries += 1
            return await self._write_outcome(run, outcome, at=now, retry=tries > 1)

        async def waiting(exc: BaseException) -> None:
            if tries == 1:  # once: the thread hears that the result is known but not yet recorded
                log.warning(
                    "step %s of incident %s (run %d) ended but its result is not recorded yet (%s); "
                    "retrying for up to %gs",
                    run.request.key,
                    run.incident.id,
                    run.attempt,
                    one_line(exc),
                    self._record_policy.deadline,
                )
                verdict = "succeeded" if outcome.ok else "failed"
                await progress(
                    f"{run.step.label} {verdict} ({outcome.summary}), but the database is not taking "
                    f"the result yet; retrying for up to {format_duration(self._record_window())}. "
                    "Do not run it again meanwhile."
                )

        try:
            current = await call_outbound(
                "database",
                write,
                policy=self._record_policy,
                idempotent=True,
                retry_on=_worth_retrying,
                on_retry=waiting,
            )
        except Exception as exc:
            if not _worth_retrying(exc):
                self._not_recorded(run, outcome, "refused it", exc)
                return StepResult(
                    run=run, outcome=outcome, duration=duration, recorded=False, stored=False, waited=True
                )
            log.warning(
                "step %s of incident %s (run %d, by %s) %s: %s — the database did not take the result within "
                "%gs (%s); it stays in memory and is tried again every %gs",
                run.request.key,
                run.incident.id,
                run.attempt,
                run.request.actor,
                "succeeded" if outcome.ok else "failed",
                outcome.summary,
                self._record_policy.deadline,
                one_line(exc),
                self._keep_trying_every,
            )
            result = StepResult(
                run=run, outcome=outcome, duration=duration, recorded=False, stored=False, waited=True, retrying=True
            )
            task = asyncio.create_task(
                self._keep_trying(result, at=now), name=f"record {run.incident.id}/{run.request.key}/{run.attempt}"
            )
            self._keeping.add(task)
            task.add_done_callback(self._keeping.discard)
            return result
        return StepResult(run=run, outcome=outcome, duration=duration, recorded=current, waited=tries > 1)

    async def _keep_trying(self, result: StepResult, *, at: datetime) -> None:
        """Write `result` until it lands, holding the run's lease: while this process lives, the outcome
        is known here, and a late write replaces "interrupted" (`finish_step` accepts that)."""
        run, outcome = result.run, result.outcome
        try:
            async with self.leases.held(run.incident.id, run.request.key, run.attempt):
                while True:
                    await asyncio.sleep(self._keep_trying_every)
                    try:
                        current = await give_up_after(
                            self._record_policy.timeout, self._write_outcome(run, outcome, at=at, retry=True)
                        )
                    except Exception as exc:
                        if _worth_retrying(exc) or isinstance(exc, TimeoutError):
                            continue
                        self._not_recorded(run, outcome, "refused it", exc)
                        return
                    break
        except asyncio.CancelledError:
            self._not_recorded(run, outcome, "was still out of reach when guardrail stopped", None)
            raise
        log.warning(
            "step %s of incident %s (run %d): its result is recorded at last",
            run.request.key,
            run.incident.id,
            run.attempt,
        )
        landed = replace(result, recorded=current, stored=True, retrying=False)
        if self._on_late_record is None:
            return
        try:
            await self._on_late_record(landed)
        except Exception:
            log.exception(
                "telling about the late result of step %s of incident %s failed", run.request.key, run.incident.id
            )

    @staticmethod
    def _not_recorded(run: ClaimedRun, outcome: ActionOutcome, why: str, exc: BaseException | None) -> None:
        log.error(
            "STEP RESULT NOT RECORDED: step %s of incident %s (run %d, by %s) %s: %s — the database %s%s; "
            "the step will show as interrupted",
            run.request.key,
            run.incident.id,
            run.attempt,
            run.request.actor,
            "succeeded" if outcome.ok else "failed",
            outcome.summary,
            why,
            f" ({one_line(exc)})" if exc is not None else "",
        )

    def _record_window(self) -> timedelta:
        return timedelta(seconds=self._record_policy.deadline)

    async def _write_outcome(self, run: ClaimedRun, outcome: ActionOutcome, *, at: datetime, retry: bool) -> bool:
        async with self._db.unit_of_work() as session:
            current = await tables.finish_step(
                session,
                incident_id=run.incident.id,
                step_key=run.request.key,
                attempt=run.attempt,
                ok=outcome.ok,
                summary=outcome.summary,
                remembered=json.dumps(dict(outcome.remembered), default=str) if outcome.ok else None,
                at=at,
            )
            if not current and retry:
                # An earlier attempt may have committed with only its answer lost: then it is done.
                row = await tables.step_row(session, incident_id=run.incident.id, step_key=run.request.key)
                if (
                    row is not None
                    and row.attempt == run.attempt
                    and row.finished_at == at
                    and row.status in (tables.SUCCEEDED, tables.FAILED)
                ):
                    return True
            await append_entry(
                session,
                at=at,
                actor=run.request.actor,
                action="incident.step.succeeded" if outcome.ok else "incident.step.failed",
                subject=run.incident.subject,
                details={
                    "step": run.request.key,
                    "label": run.step.label,
                    "attempt": run.attempt,
                    "summary": outcome.summary,
                    "details": dict(outcome.details),
                    "duration_s": round((at - run.started_at).total_seconds(), 3),
                    "recorded": current,
                },
            )
        return current

    async def preview(
        self, *, incident_id: int, step_id: str, actor: str, undo: bool = False
    ) -> ActionOutcome | Refusal:
        """The dry run: what the step would do. Changes nothing; the look is audited."""
        request = StepRequest(incident_id, step_id, actor, 0, undo=undo)
        async with self._db.reader() as session:
            found = await self._load(session, request)
        if isinstance(found, Refusal):
            return found
        incident, _, action = found
        try:
            outcome = await asyncio.wait_for(
                action.preview(self._context(request, incident.id, {}, _no_progress)),
                timeout=self.deadline.total_seconds(),
            )
        except Exception as exc:
            outcome = ActionOutcome(False, f"preview failed: {failure_text(exc)}")
        async with self._db.unit_of_work() as session:
            await append_entry(
                session,
                at=self._clock.now(),
                actor=actor,
                action="incident.step.previewed",
                subject=incident.subject,
                details={"step": request.key, "ok": outcome.ok, "summary": outcome.summary},
            )
        return outcome

    def _context(
        self, request: StepRequest, incident_id: int, remembered: dict[str, Any], progress: Progress
    ) -> ActionContext:
        return ActionContext(
            actor=request.actor,
            incident_id=incident_id,
            step_id=request.key,
            clock=self._clock,
            breakers=self._breakers,
            prober=self._prober,
            secrets=self._secrets,
            endpoints=self._endpoints,
            remembered=remembered,
            progress=progress,
        )

    def describe(self, action: Action) -> str:
        """What the action will do, for confirm dialogs; never raises."""
        try:
            return self.build_action(action).describe()
        except Exception as exc:
            return f"{action.kind} action ({failure_text(exc)})"

    @staticmethod
    def describe_built(action: StepAction) -> str:
        try:
            return action.describe()
        except Exception as exc:
            return f"action ({failure_text(exc)})"
