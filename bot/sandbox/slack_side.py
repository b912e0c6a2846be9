"""What the page's people do, sent to the bot exactly as Slack sends it, and what Slack then shows.

Every action becomes a signed request to the bot's `/slack/events` through the stand-in's
`SlackEventsClient` (slash commands, message events, `block_actions`, `view_submission`). What the
bot answers through the Web API lands in the stand-in's workspace; what it posts to a response_url
is applied here as Slack applies it (a new message, an ephemeral, or an edit of the original), since
the stand-in only records those posts. Response URLs are minted per action and named
"channel|user|message_ts", so each post finds where it belongs.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bot.sandbox.standin import payloads
from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Mark
from bot.sandbox.standin.workspace import Json

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NON_RESPONDER_ID = "U0ALICE"  # in the stand-in's workspace from the start
ARE_WE_DOWN = re.compile(r"\bare\s+we\s+down\b", re.IGNORECASE)


@dataclass
class Person:
    id: str
    name: str
    responder: bool


@dataclass
class Stopwatch:
    """From the first "are we down?" to the first success of the stop step; clicks in between."""

    stop_label: str | None
    started: float | None = None
    stopped: float | None = None
    clicks: int = 0

    def as_json(self) -> Json:
        return {
            "started": self.started,
            "stopped": self.stopped,
            "clicks": self.clicks,
            "step": self.stop_label,
            "seconds": None if self.started is None else round((self.stopped or time.time()) - self.started, 1),
        }


@dataclass
class SlackSide:
    """The people's side of Slack for the page (see the module docstring)."""

    fake: FakeSlack
    client: SlackEventsClient
    people: list[Person]
    stopwatch: Stopwatch
    version: int = 0
    notice: str | None = None  # a line for the page (the demo-day drill's progress)
    _mark: Mark = field(default_factory=Mark)
    _trigger_users: dict[str, str] = field(default_factory=dict)
    view_users: dict[str, str] = field(default_factory=dict)
    closed_views: set[str] = field(default_factory=set)
    view_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    seen_at: dict[str, float] = field(default_factory=dict)  # ts → when the page first had it (ts are not times)
    _waiters: list[asyncio.Event] = field(default_factory=list)
    on_change: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._mark = self.fake.mark()
        self.fake.on_record(self._recorded)

    # -- live updates --------------------------------------------------------------------------

    def _recorded(self) -> None:
        """A Web API call or a response_url post: apply posts, notice modals and the stop step."""
        calls = self.fake.calls_after(self._mark)
        responses = self.fake.responses_after(self._mark)
        self._mark = self.fake.mark()
        for call in calls:
            if call.method in ("views.open", "views.push") and call.ok:
                user = self._trigger_users.get(str(call.args.get("trigger_id")))
                if user:
                    self.view_users[str(call.response["view"]["id"])] = user
            if call.ok and call.method in ("chat.postMessage", "chat.update"):
                self._check_stop(str(call.args.get("text") or ""))
        for post in responses:
            if post.ok:
                self._apply_response(post.name, post.body)
        self.changed()

    def changed(self) -> None:
        self.version += 1
        for waiter in self._waiters:
            waiter.set()
        for listener in self.on_change:
            listener()

    async def wait_change(self, seen: int, timeout: float) -> int:  # noqa: ASYNC109 (an SSE keep-alive bound)
        """The version once it is past `seen`, or after `timeout` seconds."""
        if self.version > seen:
            return self.version
        waiter = asyncio.Event()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.remove(waiter)
        return self.version

    def _check_stop(self, text: str) -> None:
        watch = self.stopwatch
        if watch.started is None or watch.stopped is not None or not watch.stop_label:
            return
        if f"✅ Step *{watch.stop_label}* succeeded" in text:
            watch.stopped = time.time()

    def _apply_response(self, name: str, body: Json) -> None:
        """A response_url post, as Slack shows it."""
        channel, user, ts = [*name.split("|"), "", "", ""][:3]
        if not channel:
            return
        original = self.fake.find_message(channel, ts) if ts else None
        ephemeral = next((e for e in self.fake.ephemerals if e.get("ts") == ts and e.get("user") == user), None)
        if body.get("delete_original"):
            if original is not None:
                self.fake.remove_message(channel, ts)
            elif ephemeral is not None:
                self.fake.ephemerals.remove(ephemeral)
            return
        text, blocks = str(body.get("text") or ""), body.get("blocks")
        if body.get("replace_original"):
            target = original if original is not None else ephemeral
            if target is not None:
                target["text"] = text
                target["blocks"] = blocks
                target["edited"] = {"ts": self.fake.next_ts()}
                self._check_stop(text)
                return
        if body.get("response_type") == "in_channel":
            new_ts = self.fake.next_ts()
            self.fake.add_message(channel, self.fake.bot_message(new_ts, text, blocks, {}))
            self._check_stop(text)
        else:
            self.fake.ephemerals.append(
                {
                    "channel": channel,
                    "user": user,
                    "ts": self.fake.next_ts(),
                    "text": text,
                    "blocks": blocks,
                    "thread_ts": None,
                }
            )

    # -- actions -------------------------------------------------------------------------------

    def person(self, user_id: str) -> Person:
        found = next((p for p in self.people if p.id == user_id), None)
        if found is None:
            raise ValueError(f"unknown user {user_id!r}")
        return found

    def _trigger(self, user: str) -> str:
        trigger = self.client.new_trigger_id()
        self._trigger_users[trigger] = user
        return trigger

    def _response_url(self, channel: str, user: str, ts: str = "") -> str:
        return self.fake.response_url(f"{channel}|{user}|{ts}")

    async def say(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> int:
        """A slash command ("/freeze for 1h Demo") or a plain message, as Slack sends it; the bot's HTTP status."""
        person = self.person(user)
        text = text.strip()
        if not text:
            raise ValueError("type a message or a slash command")
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            info = self.fake.channels.get(channel, {})
            form = payloads.slash_form(
                command,
                rest.strip(),
                team_id=self.client.team_id,
                user_id=person.id,
                user_name=person.name,
                channel_id=channel,
                channel_name=str(info.get("name", channel)),
                trigger_id=self._trigger(person.id),
                response_url=self._response_url(channel, person.id),
            )
            response = await self.client.raw(urlencode(form).encode(), dict(_FORM))
        else:
            if ARE_WE_DOWN.search(text) and self.stopwatch.started is None:
                self.stopwatch.started = time.time()
            response = await self.client.message(text, user=person.id, channel=channel, thread_ts=thread_ts)
        self.changed()
        return response.status_code

    async def click(self, user: str, channel: str, ts: str, action_id: str) -> int:
        """A button click in a message (or an ephemeral) the bot posted."""
        person = self.person(user)
        message = self.fake.find_message(channel, ts)
        ephemeral = message is None
        if message is None:
            message = next((e for e in self.fake.ephemerals if e.get("ts") == ts and e.get("user") == person.id), None)
        if message is None:
            raise ValueError("that message is gone")
        block_id, element = payloads.find_button(message.get("blocks"), action_id)
        if element is None:
            raise ValueError("that button is gone (the message was updated)")
        action = {
            "action_id": action_id,
            "block_id": block_id or "block",
            "text": element.get("text"),
            "value": str(element.get("value", "")),
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("style"):
            action["style"] = element["style"]
        shown = {k: v for k, v in message.items() if k not in ("channel", "user")} if ephemeral else dict(message)
        payload = payloads.block_actions(
            action,
            team_id=self.client.team_id,
            user_id=person.id,
            channel_id=channel,
            message=shown,
            trigger_id=self._trigger(person.id),
            response_url=self._response_url(channel, person.id, ts),
        )
        if ephemeral:  # Slack sends no message body for a click in an ephemeral, only its container
            payload["container"]["is_ephemeral"] = True
            payload.pop("message")
        self._count_click()
        response = await self.client.raw(urlencode({"payload": json.dumps(payload)}).encode(), dict(_FORM))
        self.changed()
        return response.status_code

    def _count_click(self) -> None:
        if self.stopwatch.started is not None and self.stopwatch.stopped is None:
            self.stopwatch.clicks += 1

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> dict[str, str]:
        """Submit a modal; the field errors the bot answered with ({} when the modal closed)."""
        person = self.person(user)
        opened = self.fake.views.get(view_id)
        if opened is None or view_id in self.closed_views:
            raise ValueError("that dialog is closed")
        view = {**opened, "state": {"values": payloads.state_values(values)}}
        payload = payloads.view_submission(
            view, team_id=self.client.team_id, user_id=person.id, trigger_id=self._trigger(person.id)
        )
        self._count_click()
        response = await self.client.raw(urlencode({"payload": json.dumps(payload)}).encode(), dict(_FORM))
        errors: dict[str, str] = {}
        if response.content:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            if isinstance(answer, dict) and answer.get("response_action") == "errors":
                errors = {str(k): str(v) for k, v in (answer.get("errors") or {}).items()}
            elif isinstance(answer, dict) and answer.get("response_action") == "update":
                opened.update({k: v for k, v in answer.get("view", {}).items() if k in ("blocks", "title", "submit")})
        if errors:
            self.view_errors[view_id] = errors
        else:
            self.closed_views.add(view_id)
            self.view_errors.pop(view_id, None)
        self.changed()
        return errors

    def close_view(self, view_id: str) -> None:
        self.closed_views.add(view_id)
        self.changed()

    # -- what the page shows --------------------------------------------------------------------

    def state(self, user: str) -> Json:
        """Channels the person is in (with messages and their ephemerals), their open modal, the people."""
        channels = []
        for channel_id, info in self.fake.channels.items():
            members = self.fake.members.get(channel_id, [])
            if user not in members and channel_id not in self.fake.messages:
                continue
            messages = [dict(m) for m in self.fake.messages_in(channel_id)]
            for eph in self.fake.ephemerals:
                if eph.get("channel") == channel_id and eph.get("user") == user:
                    messages.append({**eph, "ephemeral": True})
            messages.sort(key=lambda m: float(m.get("ts", 0)))
            for message in messages:
                message["at"] = self.seen_at.setdefault(str(message.get("ts")), time.time())
            channels.append({"id": channel_id, "name": info.get("name", channel_id), "messages": messages})
        view = next(
            (
                {**v, "errors": self.view_errors.get(vid, {})}
                for vid, v in reversed(self.fake.views.items())
                if self.view_users.get(vid) == user and vid not in self.closed_views
            ),
            None,
        )
        return {
            "version": self.version,
            "me": user,
            "channels": channels,
            "view": view,
            "people": [{"id": p.id, "name": p.name, "responder": p.responder} for p in self.people],
            "names": {
                "users": {uid: str(u.get("name", uid)) for uid, u in self.fake.users.items()},
                "channels": {cid: str(c.get("name", cid)) for cid, c in self.fake.channels.items()},
                "groups": {gid: gid.lower() for gid in self.fake.usergroups},
            },
            "stopwatch": self.stopwatch.as_json(),
            "notice": self.notice,
        }
