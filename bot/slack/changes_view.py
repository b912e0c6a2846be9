"""Pure Block Kit rendering of changes: the watch message, the alarm, "is it the deploy?" lines."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import GuardrailConfig, format_duration
from bot.services.changes import (
    Change,
    ChangeKind,
    CountdownCancelled,
    Dismissed,
    RecentChange,
    RollbackRefused,
    RollbackStarted,
    WatchRound,
    WatchStarted,
    WatchVerdict,
)
from bot.services.changes import payloads as changes_payloads
from bot.slack import blocks

ICONS = {"up": ":large_green_circle:", "slow": ":large_yellow_circle:", "down": ":red_circle:"}
KIND_LABELS = {
    ChangeKind.DEPLOY: "deploy",
    ChangeKind.CONFIG: "config change",
    ChangeKind.ROLLBACK: "rollback",
    ChangeKind.OTHER: "release",
}


class ChangeActionId(StrEnum):
    ROLLBACK = "changes.rollback"
    DECLARE = "changes.declare"
    NOT_THE_DEPLOY = "changes.not_the_deploy"
    CANCEL_AUTO = "changes.cancel_auto_rollback"


def button_value(change: Change) -> str:
    return json.dumps({"c": change.id}, separators=(",", ":"))


def by(actor: str) -> str:
    """ "@ana" for `api:ana`, a mention for a Slack user id, the e-mail or name otherwise."""
    name = actor.removeprefix("api:")
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", name):
        return f"<@{name}>"
    if "@" in name:
        return blocks.escape(name)
    return f"@{blocks.escape(name)}"


def _minutes(delta: timedelta) -> str:
    """ "2 min", "45 s"; "1h30m" beyond an hour."""
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return format_duration(delta)
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def _what(change: Change) -> str:
    services = ", ".join(change.services)
    return blocks.escape(services)


def _statuses(statuses: dict[str, str]) -> str:
    return "  ".join(
        f"{ICONS.get(status, ':white_circle:')} {blocks.escape(service)} {status}"
        for service, status in sorted(statuses.items())
    )


def watching_text(change: Change, watch_for: timedelta) -> str:
    return (
        f"Watching {_what(change)} for {_minutes(watch_for)} after {blocks.escape(change.version)} "
        f"by {by(change.actor)}"
    )


def started(event: WatchStarted) -> tuple[str, list[blocks.Block]]:
    text = watching_text(event.change, event.watch_for)
    return text, [blocks.section(f":eyes: {text}"), blocks.context(_about(event.change))]


def progress(event: WatchRound) -> tuple[str, list[blocks.Block]]:
    text = watching_text(event.change, event.total)
    rendered = [
        blocks.section(f":eyes: {text}"),
        blocks.context(f"{_minutes(event.elapsed)} in · {_statuses(event.statuses) or 'no results yet'}"),
        blocks.context(_about(event.change)),
    ]
    return text, rendered


def verdict_message(verdict: WatchVerdict) -> tuple[str, list[blocks.Block]]:
    """The watch message's final form."""
    change = verdict.change
    if verdict.healthy:
        text = f"{change.version} looks healthy"
        line = (
            f":white_check_mark: *{blocks.escape(change.version)} looks healthy*: {_what(change)} no worse "
            f"than before it, all through the watch"
        )
        return text, [blocks.section(line), blocks.context(_statuses(verdict.statuses)), blocks.context(_about(change))]
    text = alarm_text(verdict)
    return text, [blocks.section(f":rotating_light: *{blocks.escape(text)}*"), blocks.context(_about(change))]


def alarm_text(verdict: WatchVerdict) -> str:
    change = verdict.change
    went = "went down" if verdict.status == "down" else "turned slow"
    after = _minutes(verdict.after or timedelta(0))
    who = change.actor.removeprefix("api:")
    return (
        f"{verdict.service} {went} {after} after {change.version} (deployed by @{who})"
        if "@" not in who
        else f"{verdict.service} {went} {after} after {change.version} (deployed by {who})"
    )


def alarm(verdict: WatchVerdict, tz: ZoneInfo, *, can_roll_back: bool) -> tuple[str, list[blocks.Block]]:
    """The loud part: thread reply and alerts-channel post, with the three answers."""
    change = verdict.change
    headline = alarm_text(verdict)
    text = f"{headline}. Roll back?"
    lines = [f":rotating_light: *{blocks.escape(headline)}*. Roll back?"]
    if verdict.reason:
        lines.append(f"{blocks.escape(verdict.service or '')}: {blocks.escape(blocks.truncate(verdict.reason, 300))}")
    rendered = [blocks.section("\n".join(lines)), blocks.context(_about(change))]
    value = button_value(change)
    buttons = []
    if can_roll_back:
        dialog = blocks.confirm_dialog(
            f"Roll back {change.version}?",
            f"Declares an incident and runs its rollback step for "
            f"{blocks.escape(change.service)} (through the playbook's usual checks).",
            confirm="Roll back",
        )
        buttons.append(
            blocks.button(
                f"Roll back {change.version}", ChangeActionId.ROLLBACK.value, value, style="danger", confirm=dialog
            )
        )
    buttons.append(blocks.button("Declare incident", ChangeActionId.DECLARE.value, value))
    buttons.append(blocks.button("Not the deploy", ChangeActionId.NOT_THE_DEPLOY.value, value))
    if verdict.auto_rollback_at is not None and can_roll_back:
        rendered.append(
            blocks.section(
                f":hourglass_flowing_sand: Rolling back automatically at "
                f"{blocks.slack_date(verdict.auto_rollback_at, tz, style='{time_secs}')} unless someone presses Cancel."
            )
        )
        buttons.append(blocks.button("Cancel automatic rollback", ChangeActionId.CANCEL_AUTO.value, value))
    rendered.append(blocks.actions(*buttons))
    return text, rendered


def _about(change: Change) -> str:
    what = KIND_LABELS[change.kind]
    source = {"deploy": "deploys API", "heroku": "Heroku", "kubernetes": "Kubernetes"}.get(change.source, change.source)
    line = f"{what} of {blocks.escape(change.service)} to {change.environment} · {source}"
    if change.description:
        line += f" · {blocks.escape(blocks.truncate(change.description, 120))}"
    return line


def recent_lines(changes: Sequence[RecentChange], tz: ZoneInfo, now: datetime) -> list[str]:
    """ "Is it the deploy?": each change newest first, with who and when; likely related ones marked."""
    from bot.slack.health_view import ago  # health answers render these lines: import at use, no cycle

    lines = []
    for recent in changes:
        change = recent.change
        mark = ":warning: *likely related* · " if recent.likely_related else ""
        kind = KIND_LABELS[change.kind] + (" (freeze exemption)" if change.exemption else "")
        lines.append(
            f"{mark}:package: {kind}: {blocks.escape(change.service)} {blocks.escape(change.version)} by "
            f"{by(change.actor)} {ago(now - change.at)} ({blocks.slack_date(change.at, tz, style='{time}')})"
        )
    return lines


def recent_section(changes: Sequence[RecentChange], tz: ZoneInfo, now: datetime) -> str | None:
    """The "is it the deploy?" block of an answer or incident header; None when nothing changed."""
    if not changes:
        return None
    return "\n".join(["*What changed recently (is it the deploy?)*", *recent_lines(changes, tz, now)])


def render_outbox(kind: str, payload: dict[str, Any], config: GuardrailConfig) -> tuple[str, str, list[blocks.Block]]:
    """(channel, text, blocks) of a changes outbox message."""
    if kind == changes_payloads.STARTED:
        text, rendered = started(changes_payloads.started_from(payload))
        return config.channels.deploys, text, rendered
    if kind == changes_payloads.ALERT:
        verdict = changes_payloads.verdict_from(payload)
        text, rendered = alarm(verdict, config.tz, can_roll_back=config.rollback_step() is not None)
        return config.channels.alerts or config.channels.deploys, text, rendered
    raise ValueError(f"unknown changes message kind {kind!r}")


def rollback_started(started: RollbackStarted, channel_id: str | None) -> str:
    where = f" in <#{channel_id}>" if channel_id else ""
    who = "automatically" if started.automatic else f"by {by(started.actor)}"
    return (
        f":rewind: Rolling back {blocks.escape(started.change.version)} {who}: incident "
        f"#{started.incident.id}{where} runs its rollback step."
    )


def automatic_needs_a_person(reason: str) -> str:
    return f":raised_hand: The automatic rollback did not start: {reason} Press *Roll back* to decide."


def refusal(outcome: RollbackRefused) -> str:
    line = f"⛔ {outcome.reason}"
    if outcome.incident_id is not None:
        line += f" (incident #{outcome.incident_id})"
    return line


def dismissed(outcome: Dismissed) -> str:
    return (
        f"{by(outcome.actor)} says it is not {blocks.escape(outcome.change.version)}; "
        "any automatic rollback of it is off."
    )


def cancelled(outcome: CountdownCancelled) -> str:
    return (
        f":octagonal_sign: Automatic rollback of {blocks.escape(outcome.change.version)} cancelled by "
        f"{by(outcome.actor)}."
    )
