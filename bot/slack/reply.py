"""`respond()` for every listener: over the shared HTTP session, and never a crash without a response_url.

Bolt's own `respond()` opens a new HTTP session per call and raises ValueError when a payload has
no `response_url` (a `block_actions` from some clients and surfaces). `Reply` posts to the
response_url when there is one; otherwise it reaches the person with the Web API in the channel
the request came from: ephemeral unless `response_type="in_channel"`, an update when the original
message is to be replaced. With neither, it logs one line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)

RESPONSE_URL_TIMEOUT = 10


class Reply:
    """A callable with Bolt's `respond()` keywords; returns whether Slack took the message."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        session: aiohttp.ClientSession | None,
        response_url: str | None,
        channel_id: str | None,
        user_id: str | None,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> None:
        self._client = client
        self._session = session
        self.response_url = response_url
        self.channel_id = channel_id
        self.user_id = user_id
        self.message_ts = message_ts
        self.thread_ts = thread_ts

    async def __call__(
        self,
        text: str = "",
        blocks: list[Any] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> bool:
        if self.response_url:
            message: dict[str, Any] = {
                "text": text,
                "blocks": blocks,
                "response_type": response_type,
                "replace_original": replace_original,
                "delete_original": delete_original,
                "thread_ts": thread_ts,
                **extra,
            }
            # retry_handlers=[]: a repeated post after a dropped connection could show the message twice.
            webhook = AsyncWebhookClient(
                self.response_url, timeout=RESPONSE_URL_TIMEOUT, session=self._session, retry_handlers=[]
            )
            answer = await webhook.send_dict({k: v for k, v in message.items() if v is not None})
            if answer.status_code != 200:
                log.warning(
                    "Slack refused a reply to %s: HTTP %s %s", self.user_id, answer.status_code, str(answer.body)[:200]
                )
                return False
            return True
        channel = self.channel_id
        if not channel:
            log.warning("could not reply to %s: the request has no response_url and no channel", self.user_id)
            return False
        thread = thread_ts or self.thread_ts
        if response_type == "in_channel":
            await self._client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread)
        elif replace_original and self.message_ts:
            await self._client.chat_update(channel=channel, ts=self.message_ts, text=text, blocks=blocks)
        elif self.user_id:
            await self._client.chat_postEphemeral(
                channel=channel, user=self.user_id, text=text, blocks=blocks, thread_ts=thread
            )
        else:
            log.warning("could not reply in %s: the request names no user", channel)
            return False
        return True


def reply_for(
    body: dict[str, Any], context: Any, client: AsyncWebClient, session: aiohttp.ClientSession | None
) -> Reply:
    """The Reply for a request: its response_url, or where its person is (a form's channel is the one
    it was opened from, when the form recorded it in `private_metadata`)."""
    container = body.get("container") or {}
    event = body.get("event") or {}
    channel = context.get("channel_id") or form_channel(body)
    user = context.get("user_id")
    return Reply(
        client=client,
        session=session,
        response_url=context.get("response_url"),
        channel_id=channel,
        user_id=user,
        message_ts=container.get("message_ts"),
        thread_ts=(event.get("thread_ts") or event.get("ts")) if isinstance(event, dict) else None,
    )


def form_metadata(channel_id: str | None) -> str:
    """`private_metadata` for a modal opened from `channel_id`, read back by `form_channel`."""
    return json.dumps({"channel_id": channel_id}) if channel_id else ""


def form_channel(body: dict[str, Any]) -> str | None:
    """The channel a modal was opened from, if its `private_metadata` is `{"channel_id": …}`."""
    metadata = (body.get("view") or {}).get("private_metadata")
    try:
        parsed = json.loads(metadata) if isinstance(metadata, str) and metadata else None
    except ValueError:
        return None
    channel = parsed.get("channel_id") if isinstance(parsed, dict) else None
    return channel if isinstance(channel, str) and channel else None
