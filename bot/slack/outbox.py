"""The outbox's courier: render each message at send time and post it, exactly once in the channel.

Every post carries Slack message metadata (`event_type` guardrail_outbox, `event_payload` with the
outbox id). When an earlier attempt may have reached Slack — it got no definite answer, or the
database lost the mark after it — the next attempt first looks for that id in the channel's recent
history (`conversations.history` with `include_all_metadata`) and only posts if it is not there.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import GuardrailConfig
from bot.resilience import Breakers, CallPolicy, CircuitOpen, call_outbound
from bot.services.changes import payloads as changes_payloads
from bot.services.freeze import notices as freeze_notices
from bot.services.health import StateChange
from bot.services.health.watch import OUTBOX_KIND as HEALTH_CHANGED
from bot.services.outbox import Delivered, DeliveryFailed, OutboxMessage
from bot.slack.blocks import Block
from bot.slack.changes_view import render_outbox as render_change_message
from bot.slack.freeze_view import render_notice
from bot.slack.health_view import render_change

log = logging.getLogger(__name__)

EVENT_TYPE = "guardrail_outbox"
POST = CallPolicy(timeout=10.0)  # a post is never repeated here
LOOKUP = CallPolicy(timeout=10.0, attempts=2, backoff=0.5, deadline=20.0)  # a read may be
HISTORY_PAGE = 200
HISTORY_PAGES = 5  # look through the newest 1,000 messages of the channel at most
# The lookup cannot work in this channel (scope, membership): post anyway, once more rather than never.
CANNOT_LOOK = ("missing_scope", "not_in_channel", "channel_not_found", "not_allowed_token_type")


def render(message: OutboxMessage, config: GuardrailConfig) -> tuple[str, str, list[Block]] | None:
    """(channel, text, blocks) for a message; None when there is nothing to post."""
    if message.kind.startswith(freeze_notices.KIND_PREFIX):
        text, rendered = render_notice(freeze_notices.from_payload(message.payload), config.tz)
        return config.channels.deploys, text, rendered
    if message.kind == HEALTH_CHANGED:
        change = StateChange.from_payload(message.payload)
        if config.channels.alerts is None or not change.announce:
            return None
        text, rendered = render_change(change, config.tz)
        return config.channels.alerts, text, rendered
    if message.kind.startswith(changes_payloads.KIND_PREFIX):
        return render_change_message(message.kind, message.payload, config)
    raise DeliveryFailed(f"unknown outbox message kind {message.kind!r}", maybe_posted=False, permanent=True)


def metadata(message_id: int) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": message_id}}


class SlackCourier:
    """Implements `bot.services.outbox.Courier` with the Web API client."""

    def __init__(self, client: AsyncWebClient, config: GuardrailConfig, breakers: Breakers) -> None:
        self._client = client
        self._config = config
        self._breakers = breakers

    async def deliver(self, message: OutboxMessage) -> Delivered:
        try:
            rendered = render(message, self._config)
        except (KeyError, ValueError, TypeError) as exc:
            raise DeliveryFailed(
                f"unreadable payload ({type(exc).__name__}: {exc})", maybe_posted=False, permanent=True
            ) from None
        if rendered is None:
            return Delivered(skipped=True)
        channel, text, blocks = rendered
        if message.look_first:
            ts = await self.find(channel, message.id)
            if ts is not None:
                log.info("outbox message %s was already in %s (ts %s); not posting it again", message.id, channel, ts)
                return Delivered(channel, ts, found=True)
        try:
            response = await call_outbound(
                "slack:chat.postMessage",
                lambda: self._client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, metadata=metadata(message.id)
                ),
                policy=POST,
                breakers=self._breakers,
            )
        except SlackApiError as exc:
            status = exc.response.status_code
            # Slack's own refusal (4xx, a 200 with ok=false, 429) posted nothing; a 5xx may have.
            raise DeliveryFailed(
                f"chat.postMessage: HTTP {status} {exc.response.get('error')}", maybe_posted=status >= 500
            ) from None
        except CircuitOpen as exc:
            raise DeliveryFailed(str(exc), maybe_posted=False) from None
        except Exception as exc:  # a timeout or a lost connection: the post may have arrived
            raise DeliveryFailed(f"chat.postMessage: {type(exc).__name__}: {exc}", maybe_posted=True) from None
        return Delivered(str(response.get("channel") or channel), str(response.get("ts") or "") or None)

    async def find(self, channel: str, message_id: int) -> str | None:
        """The ts of the post carrying this outbox id among the channel's newest messages, or None.

        Raises DeliveryFailed (so the attempt is retried later) when Slack cannot be asked now.
        """
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            try:
                page = await call_outbound(
                    "slack:conversations.history",
                    lambda c=cursor: self._client.conversations_history(  # type: ignore[misc]
                        channel=channel, limit=HISTORY_PAGE, include_all_metadata=True, cursor=c
                    ),
                    policy=LOOKUP,
                    breakers=self._breakers,
                    idempotent=True,
                )
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                if error in CANNOT_LOOK:
                    log.warning(
                        "cannot look for outbox message %s in %s (%s); posting it without looking",
                        message_id,
                        channel,
                        error,
                    )
                    return None
                raise DeliveryFailed(f"conversations.history: {error}", maybe_posted=True) from None
            except Exception as exc:
                raise DeliveryFailed(f"conversations.history: {type(exc).__name__}: {exc}", maybe_posted=True) from None
            for posted in page.get("messages") or []:
                meta = posted.get("metadata") or {}
                if (
                    meta.get("event_type") == EVENT_TYPE
                    and (meta.get("event_payload") or {}).get("outbox_id") == message_id
                ):
                    return str(posted.get("ts"))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                return None
        return None
