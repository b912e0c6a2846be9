"""Small pure Block Kit builders shared by every feature's rendering."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

Block = dict[str, Any]

SECTION_TEXT_LIMIT = 3000


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, 150), "emoji": True}}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(t, 3000)} for t in texts[:10]]}


def button(
    text: str, action_id: str, value: str = "", *, style: str | None = None, confirm: Block | None = None
) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(text, 75)},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def confirm_dialog(title: str, text: str, confirm: str = "Run", deny: str = "Cancel") -> Block:
    return {
        "title": {"type": "plain_text", "text": truncate(title, 100)},
        "text": {"type": "mrkdwn", "text": truncate(text, 300)},
        "confirm": {"type": "plain_text", "text": truncate(confirm, 30)},
        "deny": {"type": "plain_text", "text": truncate(deny, 30)},
    }


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    """ "2026-12-01 14:00 CET"; in UTC at the edge of the calendar, where no local time exists."""
    try:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    except (OverflowError, ValueError):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(moment: datetime, tz: ZoneInfo, *, style: str = "{date_short_pretty} {time}") -> str:
    """A time every reader sees in their own zone; the fallback is in the team's `timezone`."""
    fallback = local_time(moment, tz)
    epoch = int(moment.astimezone(UTC).timestamp())
    return f"<!date^{epoch}^{style}|{fallback}>"


def who(actor: str) -> str:
    """A mention for Slack users; anything else (`system`, `api:ci`, `recurring:Weekend`) as code."""
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", actor):
        return f"<@{actor}>"
    return f"`{escape(actor)}`"


def quoted(text: str, limit: int = 100) -> str:
    """User input echoed back in an error: escaped, and short, so a 40 kB paste can't push the
    reply past Slack's message limit (Slack would drop it, and the user would see nothing)."""
    return escape(truncate(text, limit))
