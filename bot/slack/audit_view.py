"""Pure Block Kit rendering for the audit log: `/audit`'s entries, anchors and the anchor warning."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from bot.services.audit import Anchor, AuditEntry
from bot.slack import blocks


def _describe(entry: AuditEntry) -> str:
    details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True) if entry.details else ""
    return blocks.truncate(details, 300)


def render_entries(entries: list[AuditEntry], tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    if not entries:
        return "The audit log is empty.", [blocks.section("The audit log is empty.")]
    headline = f"Last {len(entries)} audit entries"
    rendered: list[blocks.Block] = [blocks.section(f"*{headline}* (newest last)")]
    for entry in entries:
        line = (
            f"*#{entry.seq}* {blocks.slack_date(entry.at, tz)} · {blocks.who(entry.actor)} · `{entry.action}` · "
            f"{blocks.escape(entry.subject)}"
        )
        details = _describe(entry)
        if details:
            line += f"\n{blocks.escape(details)}"
        rendered.append(blocks.section(line))
    return headline, rendered


def render_anchor(anchor: Anchor) -> tuple[str, list[blocks.Block]]:
    """The anchor message: the entry number and full hash, and the command that checks them."""
    text = f"Audit log anchor: entry #{anchor.seq} has hash {anchor.hash}"
    return text, [
        blocks.section(
            f"*Audit log anchor* — entry *#{anchor.seq}* has hash `{anchor.hash}`\n"
            f"Check the log still holds it: `guardrail audit verify --anchor "
            f"{anchor.seq}:{anchor.hash}`"
        )
    ]


def render_anchor_alert(text: str) -> tuple[str, list[blocks.Block]]:
    """The warning that the log no longer holds the last anchor posted here."""
    return f"Audit log warning: {text}", [
        blocks.section(
            f":rotating_light: *Audit log warning* — {blocks.escape(text)}\n"
            "Check it with `guardrail audit verify` and the anchors posted in this channel."
        )
    ]
