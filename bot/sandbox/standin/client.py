"""SlackEventsClient: sends the bot signed requests exactly as Slack does, over real HTTP.

Signing follows Slack's v0 scheme (`X-Slack-Signature: v0=hex(HMAC-SHA256(secret,
"v0:{ts}:{body}"))`); slash commands and interactivity are form-encoded, events are JSON. It
shares ids, timestamps, messages and views with the FakeSlack it is given, so a button click can
find the message the bot posted and a submission the modal the bot opened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx

from . import payloads
from .fake_slack import FakeSlack
from .recorder import BEGINNING, Mark
from .workspace import TEAM_ID, Json


def compute_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature for `body` sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackEventsClient:
    """Signed requests to `POST {base_url}{path}` (Bolt's default `/slack/events`).

    Every method returns the bot's `httpx.Response`. `sent_events` keeps each event body by
    event_id so `retry(event_id)` can redeliver it byte-for-byte, as Slack's retries do. Each
    request first moves the stand-in's `last_action` mark, so a `wait_for` after it only sees what
    Slack received from then on.
    """

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        standin: FakeSlack,
        team_id: str = TEAM_ID,
        *,
        path: str = "/slack/events",
        timeout: float = 10.0,
    ) -> None:
        self.signing_secret = signing_secret
        self.standin = standin
        self.team_id = team_id
        self.path = path
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self.sent_events: dict[str, bytes] = {}
        self.last_event_id: str | None = None
        self._counter = 0
        self.last_action: Mark = BEGINNING  # the stand-in's mark taken before this client's last request

    async def __aenter__(self) -> SlackEventsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pool."""
        self.standin.sender_closed(self)
        await self.http.aclose()

    # -- ids --------------------------------------------------------------------------------------

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def new_event_id(self) -> str:
        """A fresh Events API event_id ("Ev0…")."""
        return f"Ev0{self._next():08X}"

    def new_trigger_id(self) -> str:
        """A fresh trigger_id in Slack's format."""
        return f"{1_000_000_000 + self._next()}.{738474920}.{secrets.token_hex(10)}"

    # -- events -----------------------------------------------------------------------------------

    async def event(
        self, event: Json, *, event_id: str | None = None, retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> httpx.Response:  # fmt: skip
        """Deliver any event in an `event_callback` envelope (JSON)."""
        event_id = event_id or self.new_event_id()
        body = json.dumps(payloads.event_envelope(event, team_id=self.team_id, event_id=event_id)).encode()
        self.sent_events[event_id] = body
        self.last_event_id = event_id
        return await self._send_event(body, retry_num, retry_reason)

    async def retry(self, event_id: str, retry_num: int = 1, retry_reason: str = "http_timeout") -> httpx.Response:
        """Redeliver a previously sent event unchanged, with Slack's retry headers."""
        return await self._send_event(self.sent_events[event_id], retry_num, retry_reason)

    async def _send_event(self, body: bytes, retry_num: int | None, retry_reason: str) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self.raw(body, headers)

    async def message(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL", ts: str | None = None,
        thread_ts: str | None = None, bot_id: str | None = None, subtype: str | None = None,
        event_id: str | None = None, retry_num: int | None = None, retry_reason: str = "http_timeout",
    ) -> httpx.Response:  # fmt: skip
        """A `message` event; also stored in the stand-in's channel history like Slack would."""
        return await self._user_post(
            "message", text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, bot_id=bot_id,
            subtype=subtype, event_id=event_id, retry_num=retry_num, retry_reason=retry_reason,
        )  # fmt: skip

    async def app_mention(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL", ts: str | None = None,
        thread_ts: str | None = None, event_id: str | None = None, retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> httpx.Response:  # fmt: skip
        """An `app_mention` event; "<@U0BOT> " is prepended when `text` does not mention the bot."""
        mention = f"<@{self.standin.bot_user_id}>"
        text = text if mention in text else f"{mention} {text}"
        return await self._user_post(
            "app_mention", text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, bot_id=None,
            subtype=None, event_id=event_id, retry_num=retry_num, retry_reason=retry_reason,
        )  # fmt: skip

    async def _user_post(
        self, kind: str, text: str, *, user: str, channel: str, ts: str | None, thread_ts: str | None,
        bot_id: str | None, subtype: str | None, event_id: str | None, retry_num: int | None,
        retry_reason: str,
    ) -> httpx.Response:  # fmt: skip
        ts = ts or self.standin.next_ts()
        event = payloads.message_event(
            kind, text, user=user, channel=channel, ts=ts, team_id=self.team_id, thread_ts=thread_ts,
            bot_id=bot_id, subtype=subtype,
        )  # fmt: skip
        if subtype is None:
            stored = {k: v for k, v in event.items() if k not in ("channel", "event_ts", "channel_type")}
            self.standin.add_message(channel, stored)
        return await self.event(event, event_id=event_id, retry_num=retry_num, retry_reason=retry_reason)

    async def url_verification(self, challenge: str) -> httpx.Response:
        """The handshake Slack sends when the Request URL is saved."""
        body = {"token": payloads.VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return await self.raw(json.dumps(body).encode(), {"Content-Type": "application/json"})

    # -- slash commands and interactivity ---------------------------------------------------------

    async def slash(
        self, command: str, text: str = "", *, user_id: str = "U0ALICE", user_name: str = "alice",
        channel_id: str = "C0GENERAL", channel_name: str = "general", trigger_id: str | None = None,
    ) -> httpx.Response:  # fmt: skip
        """A slash command (form-encoded) with a response_url minted by the stand-in."""
        form = payloads.slash_form(
            command, text, team_id=self.team_id, user_id=user_id, user_name=user_name, channel_id=channel_id,
            channel_name=channel_name, trigger_id=trigger_id or self.new_trigger_id(),
            response_url=self.standin.response_url(command.strip("/")),
        )  # fmt: skip
        response = await self._form(form)
        # Like Slack, a message in the acknowledgement's body is shown to the user (ephemeral unless
        # it says in_channel): recorded as a response under the command's name.
        if response.status_code == 200 and response.content and "json" in response.headers.get("content-type", ""):
            await self.standin.record_acknowledgement(command.strip("/"), response.content)
        return response

    async def block_action(
        self, action_id: str, value: str | None = None, *, user_id: str = "U0ALICE",
        channel_id: str = "C0GENERAL", message_ts: str | None = None, message: Json | None = None,
        block_id: str | None = None, trigger_id: str | None = None,
    ) -> httpx.Response:  # fmt: skip
        """A button click (`block_actions`, form `payload=`).

        Without `message`, the stand-in's stored message is used: the one at `message_ts`, or the
        latest in the channel with an element `action_id`. block_id, value and button text default
        to that element's; with no such message a minimal one is made up.
        """
        message = message or self._message_with(channel_id, action_id, message_ts)
        found_block, element = payloads.find_button(message.get("blocks"), action_id)
        element = element or {}
        text = element.get("text") or {"type": "plain_text", "text": action_id, "emoji": True}
        action = {
            "action_id": action_id, "block_id": block_id or found_block or "block", "text": text,
            "value": value if value is not None else str(element.get("value", "")),
            "type": element.get("type", "button"), "action_ts": f"{time.time():.6f}",
        }  # fmt: skip
        payload = payloads.block_actions(
            action, team_id=self.team_id, user_id=user_id, channel_id=channel_id, message=message,
            trigger_id=trigger_id or self.new_trigger_id(), response_url=self.standin.response_url(action_id),
        )  # fmt: skip
        return await self._form({"payload": json.dumps(payload)})

    def _message_with(self, channel_id: str, action_id: str, ts: str | None) -> Json:
        """The stored message to click in (see block_action), or a minimal stand-in one."""
        history = self.standin.messages_in(channel_id)
        if ts is not None:
            found = self.standin.find_message(channel_id, ts)
        else:
            found = next((m for m in reversed(history) if payloads.find_button(m.get("blocks"), action_id)[1]), None)
        if found is not None:
            return dict(found)
        ts = ts or self.standin.next_ts()
        return {"type": "message", "ts": ts, "text": "", "user": self.standin.bot_user_id,
                "bot_id": self.standin.bot_id, "blocks": []}  # fmt: skip

    async def shortcut(
        self, callback_id: str, *, user_id: str = "U0ALICE", trigger_id: str | None = None
    ) -> httpx.Response:
        """A global shortcut (form `payload=`)."""
        payload = payloads.shortcut(
            callback_id, team_id=self.team_id, user_id=user_id, trigger_id=trigger_id or self.new_trigger_id()
        )
        return await self._form({"payload": json.dumps(payload)})

    async def view_submission(
        self, callback_id: str, values: dict[str, Any], *, user_id: str = "U0ALICE",
        private_metadata: str | None = None, view_id: str | None = None, trigger_id: str | None = None,
    ) -> httpx.Response:  # fmt: skip
        """Submit a modal. `values` in Slack's state shape, or simplified (see payloads.state_values).

        The view is the one the bot opened (by `view_id`, else the latest with `callback_id`), so
        blocks, title and private_metadata match what the bot sent; otherwise one is made up.
        """
        opened = self._opened_view(callback_id, view_id)
        view: Json = {
            "id": view_id or self.standin.next_id("V"), "team_id": self.team_id, "type": "modal",
            "blocks": [], "private_metadata": "", "callback_id": callback_id, "hash": secrets.token_hex(10),
            "title": {"type": "plain_text", "text": callback_id}, "previous_view_id": None,
            "app_id": self.standin.app_id, "bot_id": self.standin.bot_id, "external_id": "",
        }  # fmt: skip
        view |= opened
        view["state"] = {"values": payloads.state_values(values)}
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        payload = payloads.view_submission(
            view, team_id=self.team_id, user_id=user_id, trigger_id=trigger_id or self.new_trigger_id()
        )
        return await self._form({"payload": json.dumps(payload)})

    def _opened_view(self, callback_id: str, view_id: str | None) -> Json:
        """The stand-in's stored view to submit, or {} if the bot never opened one."""
        if view_id is not None:
            return dict(self.standin.views.get(view_id, {}))
        matching = [v for v in self.standin.views.values() if v.get("callback_id") == callback_id]
        return {k: v for k, v in matching[-1].items() if k != "user_id"} if matching else {}

    # -- raw --------------------------------------------------------------------------------------

    async def _form(self, fields: dict[str, str]) -> httpx.Response:
        body = urlencode(fields).encode()
        return await self.raw(body, {"Content-Type": "application/x-www-form-urlencoded"})

    async def raw(
        self, body: bytes, headers: dict[str, str], *, sign: bool = True, timestamp: str | int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:  # fmt: skip
        """Send anything. `sign=False` omits the signature headers (unless `timestamp`/`signature`
        are given); `timestamp` (e.g. 6 minutes old, still validly signed) and `signature` (e.g.
        "v0=bad") override what is sent."""
        headers = dict(headers)
        ts = str(timestamp if timestamp is not None else int(time.time()))
        if sign or timestamp is not None:
            headers["X-Slack-Request-Timestamp"] = ts
        if sign and signature is None:
            signature = compute_signature(self.signing_secret, ts, body)
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        self.last_action = self.standin.action_started(self)  # waits after it see only what it caused
        return await self.http.post(self.path, content=body, headers=headers)
