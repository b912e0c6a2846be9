"""Pure Block Kit rendering for freezes: lists, status, announcements, the `/freeze new` modal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import FreezeConfig, format_duration
from bot.services.freeze.models import (
    AlreadyDecided,
    Exemption,
    FreezeNotice,
    FreezeRefused,
    FreezeStatus,
    FreezeWindow,
    NoticeKind,
)
from bot.services.freeze.schedule import describe_cron
from bot.slack import blocks
from bot.slack.access_view import not_a_responder
from bot.slack.blocks import Block, slack_date

APPROVE_EXEMPTION = "freeze.exemption.approve"
REFUSE_EXEMPTION = "freeze.exemption.refuse"
NEW_FORM = "freeze.new"

# Block and action ids of the `/freeze new` form (also the keys of its field errors).
FORM_ENVIRONMENT = "environment"
FORM_START_DATE = "start_date"
FORM_START_TIME = "start_time"
FORM_END_DATE = "end_date"
FORM_END_TIME = "end_time"
FORM_REASON = "reason"


def refused(exc: FreezeRefused) -> str:
    """A refusal, in Slack's words (people as mentions)."""
    if isinstance(exc, AlreadyDecided):
        by = f" by <@{exc.decided_by}>" if exc.decided_by else ""
        return f"Exemption #{exc.exemption_id} was already {exc.status}{by}."
    return not_a_responder(exc.message, exc.unreadable)


def refused_reply(exc: FreezeRefused) -> tuple[str, list[Block]]:
    """`refused` as a message: mentions and group links stay markup; the service's own words (which
    may quote what was typed) are escaped."""
    text = refused(exc)
    markup = isinstance(exc, AlreadyDecided) or bool(exc.unreadable)
    return text, [blocks.section(text if markup else blocks.escape(text))]


def span(window: FreezeWindow, tz: ZoneInfo) -> str:
    return f"{slack_date(window.starts_at, tz)} → {slack_date(window.ends_at, tz)}"


def window_line(window: FreezeWindow, tz: ZoneInfo, now: datetime, others: Sequence[FreezeWindow] = ()) -> str:
    state = "*frozen now*" if window.is_active(now) else "upcoming"
    line = (
        f"*#{window.id}* `{window.environment}` · {span(window, tz)} · {state}\n"
        f"{blocks.escape(window.reason)} — {blocks.who(window.created_by)}"
    )
    overlapping = [f"#{o.id}" for o in others if window.overlaps(o)]
    if overlapping:
        line += f" · overlaps {', '.join(overlapping)}"
    return line


def render_list(
    windows: Sequence[FreezeWindow], freeze: FreezeConfig, tz: ZoneInfo, now: datetime
) -> tuple[str, list[Block]]:
    headline = (
        f"{len(windows)} freeze window{'s' if len(windows) != 1 else ''} active or upcoming"
        if windows
        else "No freeze windows active or upcoming"
    )
    rendered: list[Block] = [blocks.section(f"*{headline}*")]
    for window in windows[:40]:
        rendered.append(blocks.section(window_line(window, tz, now, windows)))
    if len(windows) > 40:
        rendered.append(blocks.context(f"…and {len(windows) - 40} more."))
    if freeze.recurring:
        rules = []
        for rule in freeze.recurring:
            envs = ", ".join(freeze.window_environments(rule))
            rules.append(
                f"• *{blocks.escape(rule.name)}*: {describe_cron(rule.cron, tz.key)}, "
                f"for {format_duration(rule.duration)} ({envs})"
            )
        rendered.append(blocks.section("*Recurring*\n" + "\n".join(rules)))
    return headline, rendered


def render_status(status: FreezeStatus, tz: ZoneInfo) -> tuple[str, list[Block]]:
    env = f"`{status.environment}`"
    if status.active and status.frozen_until is not None:
        ids = ", ".join(f"#{w.id}" for w in status.active)
        text = f"{status.environment} is frozen until {blocks.local_time(status.frozen_until, tz)}"
        lines = [f":snowflake: {env} is *frozen* until {slack_date(status.frozen_until, tz)} ({ids})"]
        lines += [f"• #{w.id}: {blocks.escape(w.reason)} — {blocks.who(w.created_by)}" for w in status.active]
        return text, [blocks.section("\n".join(lines))]
    text = f"{status.environment} is not frozen"
    line = f":white_check_mark: {env} is *not frozen*."
    if status.upcoming is not None:
        line += f" Next: #{status.upcoming.id} from {slack_date(status.upcoming.starts_at, tz)}."
    return text, [blocks.section(line)]


def created(window: FreezeWindow, tz: ZoneInfo, now: datetime) -> tuple[str, list[Block]]:
    """The answer to `/freeze from … until …`."""
    text = f"Created freeze #{window.id} on {window.environment}."
    return text, [blocks.section(f"Created {window_line(window, tz, now)}")]


def cancelled(window: FreezeWindow) -> str:
    return f"Cancelled freeze #{window.id}."


def extended(window: FreezeWindow, tz: ZoneInfo) -> str:
    return f"Freeze #{window.id} now ends {blocks.local_time(window.ends_at, tz)}."


def exemption_requested(exemption: Exemption, deploys_channel: str) -> tuple[str, list[Block]]:
    text = f"Asked for exemption #{exemption.id}; another responder must approve it in <#{deploys_channel}>."
    return text, [blocks.section(text)]  # ids only: the channel link must stay a link


def exemption_decided(exemption: Exemption, *, approve: bool, by: str) -> tuple[str, list[Block]]:
    """What the request's message becomes once a responder clicked [Approve] or [Refuse]."""
    verdict = "approved" if approve else "refused"
    text = f"Exemption #{exemption.id} ({exemption.service}) {verdict} by <@{by}>."
    return text, [
        blocks.section(
            f"Exemption #{exemption.id} for `{blocks.escape(exemption.service)}` "
            f"(freeze #{exemption.window_id}) was *{verdict}* by "
            f"<@{by}>."
        )
    ]


def _exemption_line(exemption: Exemption) -> str:
    return (
        f"exemption #{exemption.id}: `{blocks.escape(exemption.service)}` for "
        f"{format_duration(exemption.duration)} — {blocks.escape(exemption.reason)}"
    )


def render_notice(notice: FreezeNotice, tz: ZoneInfo) -> tuple[str, list[Block]]:
    """The announcement for `channels.deploys`: notification text and blocks."""
    w = notice.window
    kind = notice.kind
    if kind is NoticeKind.DEPLOYED and notice.deploy is not None:
        d = notice.deploy.info
        text = blocks.escape(f"{d.service} {d.version} deployed to {d.environment} by {d.actor}")
        line = (
            f":rocket: `{blocks.escape(d.service)}` *{blocks.escape(d.version)}* deployed to `{d.environment}` "
            f"by `{blocks.escape(d.actor)}` {slack_date(d.at, tz)}"
        )
        if d.url:
            line += f" · <{blocks.escape(d.url).replace('|', '%7C')}|details>"
        for e in notice.deploy.exemptions:
            line += f"\n:rotating_light: during freeze #{e.window_id}, using {_exemption_line(e)}"
        return text, [blocks.section(line)]
    assert w is not None
    where = f"`{w.environment}`"
    if kind is NoticeKind.CREATED:
        text = f"Freeze #{w.id} on {w.environment}: {blocks.escape(w.reason)}"
        line = (
            f":snowflake: {blocks.who(notice.actor)} froze {where}: *{blocks.escape(w.reason)}*\n"
            f"#{w.id} · {span(w, tz)} ({format_duration(w.ends_at - w.starts_at)})"
        )
    elif kind is NoticeKind.REMINDER:
        lead = format_duration(_round(notice.until_start or timedelta()))
        text = f"Freeze #{w.id} on {w.environment} starts in {lead}: {blocks.escape(w.reason)}"
        line = f":hourglass: Freeze #{w.id} on {where} starts in *{lead}*: {blocks.escape(w.reason)}\n{span(w, tz)}"
    elif kind is NoticeKind.STARTED:
        text = f"Freeze #{w.id} on {w.environment} has started: {blocks.escape(w.reason)}"
        line = (
            f":snowflake: Freeze #{w.id} on {where} *has started*: {blocks.escape(w.reason)}\n"
            f"No deploys until {slack_date(w.ends_at, tz)}."
        )
    elif kind is NoticeKind.ENDED:
        text = f"Freeze #{w.id} on {w.environment} has ended"
        line = f":sunny: Freeze #{w.id} on {where} *has ended* ({blocks.escape(w.reason)}). Deploys are open."
    elif kind is NoticeKind.CANCELLED:
        text = f"Freeze #{w.id} on {w.environment} was cancelled"
        line = f":x: {blocks.who(notice.actor)} cancelled freeze #{w.id} on {where} ({blocks.escape(w.reason)})."
    elif kind is NoticeKind.EXTENDED:
        by = format_duration(notice.extended_by or timedelta())
        text = f"Freeze #{w.id} on {w.environment} extended by {by}"
        line = (
            f":snowflake: {blocks.who(notice.actor)} extended freeze #{w.id} on {where} by {by}: "
            f"now until {slack_date(w.ends_at, tz)}."
        )
    else:
        return _render_exemption(notice, w, tz)
    return text, [blocks.section(line)]


def _render_exemption(notice: FreezeNotice, w: FreezeWindow, tz: ZoneInfo) -> tuple[str, list[Block]]:
    e = notice.exemption
    assert e is not None
    kind = notice.kind
    if kind is NoticeKind.EXEMPTION_REQUESTED:
        text = blocks.escape(f"{notice.actor} asks to deploy {e.service} during freeze #{w.id}")
        line = (
            f":rotating_light: {blocks.who(notice.actor)} asks for a break-glass {_exemption_line(e)} "
            f"during freeze #{w.id} on `{w.environment}`. A *different* responder must approve."
        )
        return text, [
            blocks.section(line),
            blocks.actions(
                blocks.button(
                    "Approve",
                    APPROVE_EXEMPTION,
                    str(e.id),
                    style="danger",
                    confirm=blocks.confirm_dialog(
                        "Approve exemption",
                        f"Let `{blocks.escape(e.service)}` deploy during freeze #{w.id} for "
                        f"{format_duration(e.duration)}?",
                        confirm="Approve",
                    ),
                ),
                blocks.button("Refuse", REFUSE_EXEMPTION, str(e.id)),
                block_id=f"freeze-exemption-{e.id}",
            ),
        ]
    if kind is NoticeKind.EXEMPTION_APPROVED:
        text = blocks.escape(f"Exemption #{e.id} approved: {e.service} may deploy during freeze #{w.id}")
        line = (
            f":white_check_mark: {blocks.who(notice.actor)} approved {_exemption_line(e)} "
            f"(asked by {blocks.who(e.requested_by)}), until "
            f"{slack_date(e.expires_at or notice.at, tz)}."
        )
    elif kind is NoticeKind.EXEMPTION_REFUSED:
        text = f"Exemption #{e.id} refused"
        line = (
            f":no_entry: {blocks.who(notice.actor)} refused {_exemption_line(e)} "
            f"(asked by {blocks.who(e.requested_by)})."
        )
    else:
        text = f"Exemption #{e.id} expired"
        line = f":lock: {_exemption_line(e)} has expired; freeze #{w.id} applies to `{blocks.escape(e.service)}` again."
    return text, [blocks.section(line)]


def _round(delta: timedelta) -> timedelta:
    """Reminder leads read as whole minutes ("starts in 10m", not "9m 59s"); under a minute, seconds."""
    seconds = delta.total_seconds()
    if seconds < 59.5:
        return timedelta(seconds=max(1, round(seconds)))
    return timedelta(minutes=round(seconds / 60))


def new_form(environments: Sequence[str], today: str, tz: ZoneInfo) -> Block:
    """The `/freeze new` modal: environment, start and end date/time pickers, reason."""
    options = [{"text": {"type": "plain_text", "text": env}, "value": env} for env in environments[:100]]

    def picker(block_id: str, label: str, element: Block) -> Block:
        return {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": label},
            "element": {**element, "action_id": block_id},
        }

    return {
        "type": "modal",
        "callback_id": NEW_FORM,
        "title": {"type": "plain_text", "text": "New freeze window"},
        "submit": {"type": "plain_text", "text": "Freeze"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            picker(
                FORM_ENVIRONMENT,
                "Environment",
                {"type": "static_select", "options": options, "initial_option": options[0]},
            ),
            picker(FORM_START_DATE, "Starts on", {"type": "datepicker", "initial_date": today}),
            picker(FORM_START_TIME, f"at ({tz.key})", {"type": "timepicker", "initial_time": "09:00"}),
            picker(FORM_END_DATE, "Ends on", {"type": "datepicker", "initial_date": today}),
            picker(FORM_END_TIME, f"at ({tz.key})", {"type": "timepicker", "initial_time": "18:00"}),
            picker(
                FORM_REASON,
                "Why",
                {
                    "type": "plain_text_input",
                    "max_length": 500,
                    "placeholder": {"type": "plain_text", "text": "Demo Day"},
                },
            ),
        ],
    }
