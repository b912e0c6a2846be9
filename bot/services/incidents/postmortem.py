"""A postmortem draft in Markdown, written from the incident's audit trail (pure function)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.db.audit import AuditEntry
from bot.services.changes.models import RecentChange
from bot.services.incidents.models import Incident, elapsed

TODO = "_To be written._"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _who(actor: str) -> str:
    return actor if actor != "system" else "guardrail"


def _event(entry: AuditEntry) -> str | None:
    d = entry.details
    match entry.action:
        case "incident.declared":
            return f"Incident declared ({d.get('severity')}): {d.get('title')}"
        case "incident.channel_created":
            return f"Channel #{d.get('name')} created"
        case "incident.note":
            return f"Note: {d.get('text')}"
        case "incident.step.started":
            return f"Step **{d.get('label')}** started (run {d.get('attempt')}): {d.get('what')}"
        case "incident.step.succeeded" | "incident.step.failed":
            verdict = "succeeded" if entry.action.endswith("succeeded") else "FAILED"
            return f"Step **{d.get('label')}** {verdict} after {d.get('duration_s')}s: {d.get('summary')}"
        case "incident.step.interrupted":
            return (
                f"Step **{d.get('label')}** (run {d.get('attempt')}) INTERRUPTED: its guardrail process "
                "went silent before recording its result; it may still have been running or have reached its "
                "target"
            )
        case "incident.step.refused":
            return f"Refused to run step `{d.get('step')}` ({d.get('code')}): {d.get('reason')}"
        case "incident.freeze_override":
            return f"Freeze #{d.get('freeze')} ({d.get('environment')}) overridden for step `{d.get('step')}`"
        case "incident.resolved":
            return f"Incident resolved: {d.get('summary') or 'no summary given'}"
        case "incident.step.previewed":
            return f"Previewed step `{d.get('step')}`: {d.get('summary')}"
    return None


def _local(moment: datetime, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    return moment.astimezone(tz).strftime(fmt)


def _changes(changes: Sequence[RecentChange], tz: ZoneInfo) -> list[str]:
    """ "Is it the deploy?": what changed before the incident, newest first."""
    if not changes:
        return ["No deploys, config changes or rollbacks were recorded in the hours before."]
    lines = ["| When | What | Service | Version | Who | |", "|---|---|---|---|---|---|"]
    for recent in changes:
        change = recent.change
        what = change.kind.value + (" (freeze exemption)" if change.exemption else "")
        lines.append(
            f"| {_local(change.at, tz, '%Y-%m-%d %H:%M')} | {what} | {_cell(change.service)} | "
            f"{_cell(change.version)} | {_cell(change.actor)} | "
            f"{'likely related' if recent.likely_related else ''} |"
        )
    return lines


def render_markdown(
    incident: Incident, entries: Sequence[AuditEntry], tz: ZoneInfo, *, changes: Sequence[RecentChange] = ()
) -> str:
    lines = [f"# Postmortem draft: incident #{incident.id} — {incident.title}", ""]
    end = incident.resolved_at
    resolved = f"{_local(end, tz)} (after {elapsed(end - incident.declared_at)})" if end else "not yet"
    lines += [
        f"- **Severity:** {incident.severity}",
        f"- **Commander:** {incident.commander}",
        f"- **Status:** {incident.status}",
        f"- **Declared:** {_local(incident.declared_at, tz)}",
        f"- **Resolved:** {resolved}",
        f"- **Channel:** {'#' + incident.channel_name if incident.channel_name else 'none'}",
        f"- **Playbook:** {incident.playbook or 'none'}",
        "",
        "## Summary",
        "",
        incident.summary or TODO,
        "",
        "## Timeline",
        "",
        "| Time | Who | What |",
        "|---|---|---|",
    ]
    runs: dict[tuple[str, int], dict[str, object]] = {}
    for entry in entries:
        what = _event(entry)
        if what is not None:
            lines.append(f"| {_local(entry.at, tz, '%H:%M:%S')} | {_cell(_who(entry.actor))} | {_cell(what)} |")
        if entry.action.startswith("incident.step.") and "attempt" in entry.details:
            run = runs.setdefault((str(entry.details["step"]), int(entry.details["attempt"])), {})
            if entry.action == "incident.step.started":
                run.update(label=entry.details.get("label"), by=entry.actor, at=entry.at)
            elif entry.action in ("incident.step.succeeded", "incident.step.failed"):
                run.update(
                    outcome="succeeded" if entry.action.endswith("succeeded") else "failed",
                    summary=entry.details.get("summary"),
                    took=entry.details.get("duration_s"),
                )
            elif entry.action == "incident.step.interrupted" and "outcome" not in run:
                run.update(outcome="interrupted", summary="may have reached its target")
    lines += ["", "## Changes before the incident", "", *_changes(changes, tz)]
    lines += ["", "## Steps run", ""]
    if runs:
        lines += ["| Step | Run | By | Started | Took | Outcome |", "|---|---|---|---|---|---|"]
        for (step, attempt), run in runs.items():
            at = run.get("at")
            started = _local(at, tz, "%H:%M:%S") if isinstance(at, datetime) else "?"
            took = f"{run['took']}s" if run.get("took") is not None else "—"
            outcome = f"{run.get('outcome', 'did not finish')}: {run.get('summary') or ''}".rstrip(": ")
            lines.append(
                f"| {_cell(run.get('label') or step)} | {attempt} | {_cell(run.get('by', '?'))} | "
                f"{started} | {took} | {_cell(outcome)} |"
            )
    else:
        lines.append("No playbook steps were run.")
    lines += [
        "",
        "## Impact",
        "",
        TODO,
        "",
        "## Root cause",
        "",
        TODO,
        "",
        "## What went well",
        "",
        TODO,
        "",
        "## What went wrong",
        "",
        TODO,
        "",
        "## Action items",
        "",
        "- [ ] " + TODO,
        "",
    ]
    return "\n".join(lines)
