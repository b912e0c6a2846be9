"""`/audit [n]`: the last n audit entries, to the caller only."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp

from bot.db.audit import AuditEntry
from bot.runtime import Runtime
from bot.slack import blocks
from bot.slack.ids import Command
from bot.slack.payloads import SlashCommand

DEFAULT_COUNT = 10
MAX_COUNT = 40  # one block per entry, and Slack allows 50 blocks in a message
USAGE = f"Usage: `/audit [n]` shows the last n audit entries (default {DEFAULT_COUNT}, at most {MAX_COUNT})."


def parse_count(text: str) -> int | str:
    """The entry count, or an error message for the caller."""
    words = text.split()
    if not words:
        return DEFAULT_COUNT
    if len(words) > 1 or not re.fullmatch(r"[0-9]{1,6}", words[0]) or int(words[0]) < 1:
        return f"I could not read `{blocks.quoted(text)}` as a count. {USAGE}"
    return min(int(words[0]), MAX_COUNT)  # "/audit 100" means "as many as you can show"


def _describe(entry: AuditEntry) -> str:
    details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True) if entry.details else ""
    return blocks.truncate(details, 300)


def render_entries(entries: list[AuditEntry], tz: ZoneInfo) -> tuple[str, list[blocks.Block]]:
    if not entries:
        return "The audit log is empty.", [blocks.section("The audit log is empty.")]
    headline = f"Last {len(entries)} audit entries"
    rendered: list[blocks.Block] = [blocks.section(f"*{headline}* (newest last)")]
    for entry in entries:
        line = (f"*#{entry.seq}* {blocks.slack_date(entry.at, tz)} · {blocks.who(entry.actor)} · `{entry.action}` · "
                f"{blocks.escape(entry.subject)}")
        details = _describe(entry)
        if details:
            line += f"\n{blocks.escape(details)}"
        rendered.append(blocks.section(line))
    return headline, rendered


def register(app: AsyncApp, runtime: Runtime) -> None:
    @app.command(Command.AUDIT.value)
    async def audit_command(ack: Callable[..., Awaitable[None]], body: dict[str, Any],
                            respond: Callable[..., Awaitable[Any]]) -> None:
        await ack()
        command = SlashCommand.parse(body)
        count = parse_count(command.text)
        if isinstance(count, str):
            await respond(text=count, response_type="ephemeral")
            return
        entries = await runtime.audit.latest(count)
        text, rendered = render_entries(entries, runtime.config.tz)
        await respond(text=text, blocks=rendered, response_type="ephemeral")
