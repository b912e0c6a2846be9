"""`/audit [n]`: the last n audit entries, to the caller only."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.audit import Anchor, AuditEntry
from bot.resilience import Breakers, CallPolicy, call_outbound
from bot.runtime import Runtime
from bot.slack import blocks
from bot.slack.ids import Command
from bot.slack.payloads import SlashCommand

log = logging.getLogger(__name__)

SLACK_CALL = CallPolicy(timeout=10.0)
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


class SlackAnchorPoster:
    """Posts audit anchors to `audit.anchor_channel`; failures are logged and reported as False."""

    def __init__(self, client: AsyncWebClient, breakers: Breakers) -> None:
        self._client = client
        self._breakers = breakers

    async def post_anchor(self, channel: str, anchor: Anchor) -> bool:
        text, rendered = render_anchor(anchor)
        try:
            await call_outbound(
                "slack:chat.postMessage",
                lambda: self._client.chat_postMessage(channel=channel, text=text, blocks=rendered),
                policy=SLACK_CALL,
                breakers=self._breakers,
            )
        except Exception as exc:
            log.warning("could not post audit anchor #%d: %s: %s", anchor.seq, type(exc).__name__, str(exc)[:200])
            return False
        return True

    async def post_alert(self, channel: str, text: str) -> bool:
        summary, rendered = render_anchor_alert(text)
        try:
            await call_outbound(
                "slack:chat.postMessage",
                lambda: self._client.chat_postMessage(channel=channel, text=summary, blocks=rendered),
                policy=SLACK_CALL,
                breakers=self._breakers,
            )
        except Exception as exc:
            log.warning("could not post the audit log warning: %s: %s", type(exc).__name__, str(exc)[:200])
            return False
        return True


def register(app: AsyncApp, runtime: Runtime) -> None:
    @app.command(Command.AUDIT.value)
    async def audit_command(
        ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Callable[..., Awaitable[Any]]
    ) -> None:
        await ack()
        command = SlashCommand.parse(body)
        count = parse_count(command.text)
        if isinstance(count, str):
            await respond(text=count, response_type="ephemeral")
            return
        entries = await runtime.audit.latest(count)
        text, rendered = render_entries(entries, runtime.config.tz)
        await respond(text=text, blocks=rendered, response_type="ephemeral")
