"""`/audit [n]`: the last n audit entries, to the caller only; and the poster of audit anchors."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.resilience import Breakers, CallPolicy, call_outbound
from bot.runtime import Runtime
from bot.services.audit import Anchor
from bot.slack import blocks
from bot.slack.audit_view import render_anchor, render_anchor_alert, render_entries
from bot.slack.ids import Command
from bot.slack.payloads import SlashCommand

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]
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


class SlackAnchorPoster:
    """Posts audit anchors to `audit.anchor_channel`; failures are logged and reported as False."""

    def __init__(self, client: AsyncWebClient, breakers: Breakers) -> None:
        self._client = client
        self._breakers = breakers

    async def post_anchor(self, channel: str, anchor: Anchor) -> bool:
        return await self._post(channel, *render_anchor(anchor), what=f"audit anchor #{anchor.seq}")

    async def post_alert(self, channel: str, text: str) -> bool:
        return await self._post(channel, *render_anchor_alert(text), what="the audit log warning")

    async def _post(self, channel: str, text: str, rendered: list[blocks.Block], *, what: str) -> bool:
        """Post the message; a failure is logged and returned as False, never raised."""
        try:
            await call_outbound(
                "slack:chat.postMessage",
                lambda: self._client.chat_postMessage(channel=channel, text=text, blocks=rendered),
                policy=SLACK_CALL,
                breakers=self._breakers,
            )
        except Exception as exc:
            log.warning("could not post %s: %s: %s", what, type(exc).__name__, str(exc)[:200])
            return False
        return True


class AuditHandlers:
    """The audit feature's Slack handler: parse the count, read the log, render it with `audit_view`."""

    def __init__(self, runtime: Runtime) -> None:
        self.audit = runtime.audit
        self.tz = runtime.config.tz

    async def audit_command(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        count = parse_count(SlashCommand.parse(body).text)
        if isinstance(count, str):
            await respond(text=count, response_type="ephemeral")
            return
        text, rendered = render_entries(await self.audit.latest(count), self.tz)
        await respond(text=text, blocks=rendered, response_type="ephemeral")


def register(app: AsyncApp, runtime: Runtime) -> None:
    handlers = AuditHandlers(runtime)
    app.command(Command.AUDIT.value)(handlers.audit_command)
