"""Pure Block Kit rendering of health answers and watch announcements."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.checks.base import CheckResult, Status
from bot.config import format_duration
from bot.services.health import HealthReport, StateChange
from bot.services.ports import RollbackCheckStatus
from bot.slack import blocks
from bot.slack.changes_view import recent_section
from bot.slack.ids import Action

ICONS = {Status.UP: ":large_green_circle:", Status.SLOW: ":large_yellow_circle:", Status.DOWN: ":red_circle:"}
SECTION_BUDGET = 2900  # stay under Slack's 3000 characters per section


def ago(delta: timedelta) -> str:
    """ "just now", "45 s ago", "4 min ago", "3 h ago", "2 d ago"."""
    seconds = int(delta.total_seconds())
    if seconds < 2:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def last_checked_line(status: RollbackCheckStatus | None, tz: ZoneInfo, now: datetime | None = None) -> str:
    """ "Rollbacks last checked 2 h ago: all 3 paths can run" (or how many cannot)."""
    if status is None:
        return ":grey_question: Rollbacks not checked yet (`guardrail rollback-check`)"
    when = blocks.slack_date(status.checked_at, tz)
    if now is not None:  # the playbook message is compared across renders: no "ago" there
        when = f"{ago(now - status.checked_at)} ({when})"
    if status.ok:
        paths = f"all {status.paths} paths" if status.paths > 1 else "the path" if status.paths else "no paths"
        return f":white_check_mark: Rollbacks last checked {when}: {paths} can run"
    return f":warning: Rollbacks last checked {when}: {status.red} of {status.paths} paths cannot run"


def _latency(result: CheckResult) -> str:
    if result.latency_ms is None:
        return "—"
    return f"{result.latency_ms:.0f} ms" if result.latency_ms < 10_000 else f"{result.latency_ms / 1000:.1f} s"


def service_line(result: CheckResult, tz: ZoneInfo, now: datetime) -> str:
    line = (
        f"{ICONS[result.status]} *{blocks.escape(result.service)}* {result.status.value} · "
        f"{_latency(result)} · {blocks.escape(result.reason)}"
    )
    if result.down_since is not None:
        line += (
            f" · down since {blocks.slack_date(result.down_since, tz, style='{time}')} "
            f"({ago(now - result.down_since).removesuffix(' ago')})"
        )
    return line


def incident_value(services: list[str]) -> str:
    """The Declare incident button's value, JSON {"services": [...]}, within Slack's 2000 characters."""
    chosen: list[str] = []
    for name in services:
        if len(json.dumps({"services": [*chosen, name]})) > 2000:
            break
        chosen.append(name)
    return json.dumps({"services": chosen})


def _chunks(lines: list[str]) -> list[str]:
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= SECTION_BUDGET:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def freshness(report: HealthReport, cache_ttl: timedelta) -> str:
    if report.age < timedelta(seconds=2):
        text = "Checked just now"
    else:
        text = f"Checked {ago(report.age)}"
    if report.reused:
        text += f" (shared result, re-checked at most every {format_duration(cache_ttl)})"
    return text


def render_report(
    report: HealthReport, tz: ZoneInfo, now: datetime, cache_ttl: timedelta
) -> tuple[str, list[blocks.Block]]:
    """The notification text (the headline) and the blocks of a health answer."""
    headline = report.headline
    icon = ":red_circle:" if report.down else ":large_yellow_circle:" if report.slow else ":large_green_circle:"
    rendered: list[blocks.Block] = [blocks.section(f"{icon} *{blocks.escape(headline)}*")]
    if not report.results:
        rendered.append(blocks.section("Add services to check under `services:` in the configuration."))
    for chunk in _chunks([service_line(r, tz, now) for r in report.results]):
        rendered.append(blocks.section(chunk))
    rendered.append(blocks.context(freshness(report, cache_ttl)))

    facts: list[str] = []
    if report.freeze is not None:
        window = report.freeze
        facts.append(
            f":snowflake: *{blocks.escape(window.environment)} is frozen* until "
            f"{blocks.slack_date(window.ends_at, tz)}: {blocks.escape(window.reason)} "
            f"(#{window.id}, by {blocks.who(window.created_by)})"
        )
    # Recorded changes include the deploys (with config changes and rollbacks): list those when there are any.
    for deploy in report.deploys if not report.changes else []:
        facts.append(
            f":package: {blocks.escape(deploy.service)} {blocks.escape(deploy.version)} deployed "
            f"{ago(now - deploy.at)} by {blocks.escape(deploy.actor)}"
        )
    for incident in report.incidents:
        where = f" in <#{incident.channel_id}>" if incident.channel_id else ""
        facts.append(
            f":rotating_light: Open incident #{incident.id} ({incident.severity}): "
            f"{blocks.escape(incident.title)}{where}"
        )
    for chunk in _chunks(facts):
        rendered.append(blocks.section(chunk))
    changed = recent_section(report.changes, tz, now)
    if changed is not None:
        rendered.extend(blocks.section(chunk) for chunk in _chunks(changed.split("\n")))
    if report.rollback_check is not None:
        rendered.append(blocks.context(last_checked_line(report.rollback_check, tz, now)))
    if report.unavailable:
        rendered.append(blocks.context(f"Could not read: {', '.join(report.unavailable)}"))
    if report.down:
        value = incident_value(report.down)
        rendered.append(
            blocks.actions(blocks.button("Declare incident", Action.DECLARE_INCIDENT.value, value, style="danger"))
        )
    return headline, rendered[:50]


def render_change(change: StateChange, tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    """A watched service changed state: what it is now, what it was, and why."""
    result = change.result
    was = "" if change.old == "unknown" else f" (was {change.old})"
    text = f"{result.service} is {change.new.value}{was}"
    line = (
        f"{ICONS[change.new]} *{blocks.escape(result.service)}* is {change.new.value}{was} · "
        f"{_latency(result)} · {blocks.escape(result.reason)}"
    )
    seen = blocks.slack_date(result.checked_at, tz, style="{time}")
    rendered = [blocks.section(line), blocks.context(f"Seen at {seen} by guardrail's watch")]
    if change.new is Status.DOWN:
        value = incident_value([result.service])
        rendered.append(
            blocks.actions(blocks.button("Declare incident", Action.DECLARE_INCIDENT.value, value, style="danger"))
        )
    return text, rendered
