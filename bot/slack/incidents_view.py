"""Pure Block Kit rendering for incidents: header, playbook buttons, confirmations, results."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.actions.base import ActionOutcome
from bot.redaction import redact
from bot.services.changes import RecentChange
from bot.services.incidents import (
    ClaimedRun,
    FreezeLift,
    Incident,
    InterruptedRun,
    NeedsConfirmation,
    PlaybookView,
    Refusal,
    Resolution,
    StepResult,
    StepState,
    StepView,
    elapsed,
)
from bot.slack import blocks
from bot.slack.access_view import not_a_responder
from bot.slack.changes_view import recent_section
from bot.slack.health_view import last_checked_line

USAGE = (
    "Usage:\n"
    "• `/incident declare <title> [sev1|sev2|sev3] [--playbook <name>]` — open an incident and its channel\n"
    "In an incident channel:\n"
    "• `/incident status` — the incident and its playbook steps\n"
    "• `/incident note <text>` — add to the timeline\n"
    "• `/incident playbook` — post the playbook buttons again\n"
    "• `/incident resolve [summary]` — close it, with a summary and durations"
)


class IncidentActionId(StrEnum):
    """Every incident button's action id. Step buttons append `:<step id>` (unique per message)."""

    RUN = "incident.step.run"
    UNDO = "incident.step.undo"
    PREVIEW = "incident.step.preview"
    CONFIRM = "incident.step.confirm"
    LIFT_FREEZE = "incident.freeze.lift"

    def for_step(self, step_id: str) -> str:
        return f"{self.value}:{step_id}"


# Slack allows 50 blocks per message: the intro, two blocks per step, and a note if steps are cut.
MAX_STEPS_SHOWN = 24

STATE_LABELS = {
    "not_run": "⚪ not run",
    "running": "⏳ running",
    "succeeded": "✅ succeeded",
    "failed": "❌ failed",
    "refused": "⛔ refused",
    "interrupted": "⚠️ interrupted",
}


def severity_label(severity: str) -> str:
    return {"sev1": "🔴 SEV1", "sev2": "🟠 SEV2", "sev3": "🟡 SEV3"}.get(severity, severity.upper())


def header(incident: Incident, tz: ZoneInfo, changes: Sequence[RecentChange] = ()) -> tuple[str, list[blocks.Block]]:
    text = f"Incident #{incident.id}: {incident.title}"
    status = "🟢 resolved" if not incident.is_open else "🔥 open"
    facts = (
        f"*Severity:* {severity_label(incident.severity)}   *Commander:* <@{incident.commander}>   *Status:* {status}"
    )
    if incident.freeze_id is not None and incident.is_open:
        facts += f"\n🧊 Deploys are frozen for this incident (freeze #{incident.freeze_id})."
    rendered = [
        blocks.header(text),
        blocks.section(facts),
        blocks.context(
            f"Declared {blocks.slack_date(incident.declared_at, tz)}"
            + (f" · playbook `{incident.playbook}`" if incident.playbook else " · no playbook")
        ),
    ]
    changed = recent_section(changes, tz, incident.declared_at)
    if changed is not None:
        rendered.append(blocks.section(changed))
    return text, rendered


def _state_line(state: StepState, tz: ZoneInfo) -> str:
    line = STATE_LABELS.get(state.status, state.status)
    if state.actor and state.status != "not_run":
        moment = state.finished_at or state.started_at
        line += f" · <@{state.actor}>"
        if moment is not None:
            line += f" · {blocks.slack_date(moment, tz, style='{time}')}"
    if state.duration is not None:
        line += f" · took {elapsed(state.duration)}"
    if state.attempt > 1:
        line += f" · run {state.attempt} times"
    if state.summary:
        line += f"\n{blocks.escape(blocks.truncate(state.summary, 300))}"
    return line


def _value(incident_id: int, attempt: int) -> str:
    return json.dumps({"i": incident_id, "a": attempt}, separators=(",", ":"))


def _step_blocks(view: StepView, incident: Incident, tz: ZoneInfo) -> list[blocks.Block]:
    step, state = view.step, view.state
    warn = " · _changes production_" if step.changes_production else ""
    after = f" · after {', '.join(f'`{a}`' for a in step.after)}" if step.after else ""
    text = f"*{blocks.escape(step.label)}*{warn}{after}\n{_state_line(state, tz)}"
    if view.undo_state is not None and view.undo_state.status != "not_run":
        text += f"\n_Undo:_ {_state_line(view.undo_state, tz)}"
    if step.description:
        text += f"\n_{blocks.escape(step.description)}_"
    rendered = [blocks.section(text)]
    if not incident.is_open:
        return rendered
    confirm = None
    if step.changes_production:
        confirm = blocks.confirm_dialog(f"Run: {step.label}", blocks.escape(view.describe), confirm="Run it")
    buttons = [
        blocks.button(
            step.label,
            IncidentActionId.RUN.for_step(step.id),
            _value(incident.id, state.attempt),
            style="danger" if step.changes_production else "primary",
            confirm=confirm,
        ),
        blocks.button("Preview", IncidentActionId.PREVIEW.for_step(step.id), _value(incident.id, state.attempt)),
    ]
    if view.undo_state is not None and state.succeeded_at is not None:
        undo_confirm = blocks.confirm_dialog(
            f"Undo: {step.label}", blocks.escape(view.undo_describe or ""), confirm="Undo it"
        )
        buttons.append(
            blocks.button(
                f"Undo: {step.label}",
                IncidentActionId.UNDO.for_step(step.id),
                _value(incident.id, view.undo_state.attempt),
                confirm=undo_confirm,
            )
        )
    rendered.append(blocks.actions(*buttons, block_id=f"step:{step.id}"))
    return rendered


def playbook(view: PlaybookView, tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    """The playbook message: one block group per step, its state, and its buttons."""
    incident = view.incident
    text = f"Playbook {incident.playbook} for incident #{incident.id}"
    intro = (
        f"*Playbook `{incident.playbook}`* — press a step to run it; outputs go in this thread."
        if incident.is_open
        else f"*Playbook `{incident.playbook}`* — incident resolved, buttons removed."
    )
    rendered: list[blocks.Block] = [blocks.section(intro)]
    shown = view.steps[:MAX_STEPS_SHOWN]
    for step_view in shown:
        rendered.extend(_step_blocks(step_view, incident, tz))
    if len(view.steps) > len(shown):
        rendered.append(
            blocks.context(
                f"{len(view.steps) - len(shown)} more steps are not shown: Slack allows "
                f"{MAX_STEPS_SHOWN} here. Split the playbook."
            )
        )
    if view.rollback_check is not None:
        rendered.append(blocks.context(last_checked_line(view.rollback_check, tz)))
    return text, rendered[:50]


def status(view: PlaybookView, tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    text, rendered = header(view.incident, tz)
    for step_view in view.steps:
        rendered.append(blocks.section(f"*{blocks.escape(step_view.step.label)}* — {_state_line(step_view.state, tz)}"))
    return text, rendered[:50]


def confirmation_question(needed: NeedsConfirmation) -> str:
    """Why one more click is needed, as a question."""
    if needed.kind == "interrupted":
        by = f", started by <@{needed.actor}>" if needed.actor else ""
        return (
            f"The previous run of *{needed.label}* (run {needed.attempt}{by}) was interrupted: its guardrail "
            "process went silent before it recorded how it ended. *That attempt may still be running or may "
            "already have reached the target* — check before running it again. Run it again?"
        )
    if needed.kind == "rerun":
        return f"*{needed.label}* already succeeded in this incident (run by <@{needed.actor}>). Run it again?"
    freeze = needed.freeze
    where = f"Deploys to {freeze.environment} are frozen (freeze #{freeze.id}: {freeze.reason}). " if freeze else ""
    return f"{where}Run *{needed.label}* anyway as a critical incident fix?"


def confirmation(needed: NeedsConfirmation) -> tuple[str, list[blocks.Block]]:
    """The extra explicit confirmation (run again / run during a freeze), to the clicker only."""
    request = needed.request
    value = json.dumps(
        {
            "i": request.incident_id,
            "a": request.seen_attempt,
            "u": request.undo,
            "r": request.confirmed_rerun,
            "f": request.freeze_override,
        },
        separators=(",", ":"),
    )
    warning = ""
    if needed.kind == "freeze" and needed.freeze is not None:
        label = f"Critical incident fix — run during freeze #{needed.freeze.id}"
    elif needed.kind == "interrupted":
        label = "Run again anyway"
        warning = "The previous attempt may already have reached the target. "
    else:
        label = "Run again"
    dialog = blocks.confirm_dialog(label, warning + blocks.escape(needed.describe), confirm="Run it")
    button = blocks.button(
        label, IncidentActionId.CONFIRM.for_step(request.step_id), value, style="danger", confirm=dialog
    )
    question = confirmation_question(needed)
    return question, [blocks.section(question), blocks.context(blocks.escape(needed.describe)), blocks.actions(button)]


def started(run: ClaimedRun) -> str:
    what = "Undo of" if run.request.undo else "Step"
    line = (
        f"▶️ {what} *{blocks.escape(run.step.label)}* started by <@{run.request.actor}> (run {run.attempt}): "
        f"{blocks.escape(run.describe)}"
    )
    if run.after_interrupted:
        line += f"\n⚠️ Run {run.attempt - 1} was interrupted; run again on purpose."
    if run.freeze_override is not None:
        line += f"\n⚠️ Overriding freeze #{run.freeze_override.id} as a critical incident fix."
    return line


# What an action sent or got back can hold credentials or customer data: it stays in the audit log.
NOT_SHOWN_IN_SLACK = frozenset({"response", "body", "json", "headers"})


def shareable(details: Any) -> Any:
    """The part of an action's details fit for a channel: secret-looking keys redacted, and
    request/response bodies and headers left out, at any depth."""
    if isinstance(details, Mapping):
        return {str(k): shareable(v) for k, v in redact(details).items() if str(k).lower() not in NOT_SHOWN_IN_SLACK}
    if isinstance(details, list | tuple):
        return [shareable(v) for v in details]
    return details


def _details(details: Mapping[str, Any]) -> str:
    shown = shareable(details)
    if not shown:
        return ""
    body = json.dumps(shown, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return f"\n```{blocks.truncate(body, 1000)}```"


def finished(result: StepResult) -> str:
    run, outcome = result.run, result.outcome
    what = "Undo of" if run.request.undo else "Step"
    mark = "✅" if outcome.ok else "❌"
    verdict = "succeeded" if outcome.ok else "failed"
    if result.retrying:
        note = (
            "\n⚠️ *Not recorded yet*: the database did not take this result in time. guardrail keeps it and "
            "keeps trying in the background; until it lands the step may show as interrupted. This message is "
            "the record — check the target before running it again."
        )
    elif not result.stored:
        note = (
            "\n⚠️ *Not recorded*: the database did not take this result, so the step will show as "
            "interrupted. This message is the record — check the target before running it again."
        )
    elif not result.recorded:
        note = " _(late: a newer run had started, so this is not the step's state)_"
    elif result.waited:
        note = " _(recorded once the database was back)_"
    else:
        note = ""
    return (
        f"{mark} {what} *{blocks.escape(run.step.label)}* {verdict} after {elapsed(result.duration)} "
        f"(run {run.attempt}): {blocks.escape(outcome.summary)}{note}{_details(outcome.details)}"
    )


def interrupted(run: InterruptedRun, tz: ZoneInfo) -> str:
    """The thread's word that a run's process went silent before it recorded how the run ended (it may
    have died, or be alive and cut off from the database with its action still running)."""
    what = "Undo of" if run.undo else "Step"
    by = f" started by <@{run.actor}>" if run.actor else ""
    when = f" {blocks.slack_date(run.started_at, tz, style='{time}')}" if run.started_at else ""
    return (
        f"⚠️ {what} *{blocks.escape(run.label)}* (run {run.attempt}{by}{when}) was *interrupted*: its guardrail "
        "process went silent (it stopped, or lost the database) before it recorded how the run ended. The action "
        "may still be running or may already have reached its target — "
        "check it before pressing the button again (it will ask you to confirm)."
    )


def preview(label: str, outcome: ActionOutcome) -> str:
    mark = "🔎" if outcome.ok else "⚠️"
    return (
        f"{mark} *Preview of {blocks.escape(label)}* (nothing was changed): {blocks.escape(outcome.summary)}"
        f"{_details(outcome.details)}"
    )


def freeze_override(run: ClaimedRun) -> str:
    assert run.freeze_override is not None
    freeze = run.freeze_override
    where = f"<#{run.incident.channel_id}>" if run.incident.channel_id else f"incident #{run.incident.id}"
    return (
        f"⚠️ Freeze #{freeze.id} ({freeze.environment}) overridden by <@{run.request.actor}> for a critical "
        f"incident fix in {where}: *{blocks.escape(run.step.label)}* — {blocks.escape(run.describe)}"
    )


def refusal_text(refused: Refusal) -> str:
    """The service's plain reason, said the Slack way: the step's label in bold, who is running it mentioned."""
    if refused.code == "running" and refused.actor:
        return f"This step is already running (started by <@{refused.actor}>). It will not be started twice."
    if refused.label and refused.reason.startswith(refused.label):
        return f"*{refused.label}*{refused.reason[len(refused.label) :]}"
    return not_a_responder(refused.reason, refused.unreadable)


def refusal(refused: Refusal) -> str:
    return f"⛔ {refusal_text(refused)}"


def freeze_lift(result: FreezeLift) -> str:
    if not result.lifted:
        return f"Freeze #{result.freeze_id} had already ended."
    return f"Freeze #{result.freeze_id} lifted by <@{result.actor}>: deploys are open again."


def declared_link(incident: Incident) -> str:
    where = f"<#{incident.channel_id}>" if incident.channel_id else "(no channel)"
    return (
        f"🚨 Incident #{incident.id} declared by <@{incident.commander}>: *{blocks.escape(incident.title)}* "
        f"({severity_label(incident.severity)}) → {where}"
    )


def resolution(res: Resolution, tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    incident = res.incident
    text = f"Incident #{incident.id} resolved after {elapsed(res.duration)}"
    lines = [f"✅ *{text}* by <@{incident.resolved_by}>"]
    if incident.summary:
        lines.append(f"*Summary:* {blocks.escape(incident.summary)}")
    ran = [v for v in res.steps if v.state.status != "not_run"]
    if ran:
        lines.append("*Steps:*")
        for view in ran:
            took = f", {elapsed(view.state.duration)}" if view.state.duration is not None else ""
            by = f" by <@{view.state.actor}>" if view.state.actor else ""
            lines.append(f"• {blocks.escape(view.step.label)}: {view.state.status}{by}{took}")
    rendered = [
        blocks.section("\n".join(lines)),
        blocks.context(
            f"Declared {blocks.slack_date(incident.declared_at, tz)} · resolved "
            f"{blocks.slack_date(res.incident.resolved_at or incident.declared_at, tz)} · "
            f"export the postmortem: `guardrail incident export {incident.id}`"
        ),
    ]
    if res.freeze_to_lift is not None:
        freeze = res.freeze_to_lift
        rendered.append(blocks.section(f"🧊 Deploys are still frozen for this incident (freeze #{freeze})."))
        rendered.append(
            blocks.actions(
                blocks.button(
                    f"Lift freeze #{freeze}",
                    IncidentActionId.LIFT_FREEZE.value,
                    json.dumps({"i": incident.id}),
                    style="primary",
                    confirm=blocks.confirm_dialog(
                        f"Lift freeze #{freeze}?", "Deploys to production will be allowed again.", confirm="Lift it"
                    ),
                )
            )
        )
    return text, rendered
