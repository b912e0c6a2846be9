"""Request bodies exactly as Slack sends them to an app: events, slash commands, interactivity.

Pure functions (no I/O) so the shapes are easy to read against Slack's docs; `client` signs and
sends them. The small `text_input`/`static_select`/… helpers build `view.state.values` entries.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from .workspace import APP_ID, BOT_USER_ID, TEAM_DOMAIN, Json, rich_text_blocks

VERIFICATION_TOKEN = "legacy-verification-token"


def channel_type(channel: str) -> str:
    """Slack's `channel_type` for a channel id: im (D…), group (G…) or channel."""
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def event_envelope(event: Json, *, team_id: str, event_id: str) -> Json:
    """The `event_callback` wrapper around an Events API event."""
    event_ts = event.get("event_ts") or event.get("ts") or f"{time.time():.6f}"
    return {
        "token": VERIFICATION_TOKEN, "team_id": team_id, "context_team_id": team_id, "api_app_id": APP_ID,
        "event": event, "type": "event_callback", "event_id": event_id, "event_time": int(float(event_ts)),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": f"4-{uuid.uuid4().hex}",
    }  # fmt: skip


def message_event(
    kind: str,
    text: str,
    *,
    user: str,
    channel: str,
    ts: str,
    team_id: str,
    thread_ts: str | None = None,
    bot_id: str | None = None,
    subtype: str | None = None,
) -> Json:
    """A `message` or `app_mention` event as a person (or, with bot_id, another bot) posts it."""
    event: Json = {
        "type": kind, "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
        "team": team_id, "blocks": rich_text_blocks(text, ts),
    }  # fmt: skip
    if kind == "message":
        event["channel_type"] = channel_type(channel)
    if bot_id:
        event["bot_id"] = bot_id
        event["app_id"] = "A0OTHER"
    else:
        event["client_msg_id"] = str(uuid.uuid4())
    if subtype:
        event["subtype"] = subtype
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def slash_form(
    command: str, text: str, *, team_id: str, user_id: str, user_name: str, channel_id: str,
    channel_name: str, trigger_id: str, response_url: str,
) -> dict[str, str]:  # fmt: skip
    """The form fields of a slash command request."""
    return {
        "token": VERIFICATION_TOKEN, "team_id": team_id, "team_domain": TEAM_DOMAIN, "channel_id": channel_id,
        "channel_name": channel_name, "user_id": user_id, "user_name": user_name,
        "command": command if command.startswith("/") else f"/{command}", "text": text, "api_app_id": APP_ID,
        "is_enterprise_install": "false", "response_url": response_url, "trigger_id": trigger_id,
    }  # fmt: skip


def _user(user_id: str, team_id: str) -> Json:
    name = user_id.lower().removeprefix("u0")
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def block_actions(
    action: Json, *, team_id: str, user_id: str, channel_id: str, message: Json, trigger_id: str,
    response_url: str,
) -> Json:  # fmt: skip
    """A `block_actions` payload for a click on `action` in `message`."""
    return {
        "type": "block_actions", "user": _user(user_id, team_id), "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel_id,
                      "is_ephemeral": False},
        "trigger_id": trigger_id, "team": {"id": team_id, "domain": TEAM_DOMAIN}, "enterprise": None,
        "is_enterprise_install": False, "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": message, "state": {"values": {}}, "response_url": response_url, "actions": [action],
    }  # fmt: skip


def shortcut(callback_id: str, *, team_id: str, user_id: str, trigger_id: str) -> Json:
    """A global `shortcut` payload (from the lightning-bolt menu)."""
    return {
        "type": "shortcut", "token": VERIFICATION_TOKEN, "action_ts": f"{time.time():.6f}",
        "team": {"id": team_id, "domain": TEAM_DOMAIN}, "user": _user(user_id, team_id),
        "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id,
        "trigger_id": trigger_id,
    }  # fmt: skip


def view_submission(view: Json, *, team_id: str, user_id: str, trigger_id: str) -> Json:
    """A `view_submission` payload for `view` (which already carries `state.values`)."""
    return {
        "type": "view_submission", "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id), "api_app_id": APP_ID, "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id, "view": view, "response_urls": [], "is_enterprise_install": False,
        "enterprise": None,
    }  # fmt: skip


def find_button(blocks: Any, action_id: str) -> tuple[str | None, Json | None]:
    """(block_id, element) of the interactive element with `action_id` in `blocks`, if present."""
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Mapping):
            continue
        candidates = [*list(block.get("elements") or []), block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                block_id = block.get("block_id")
                return (block_id if isinstance(block_id, str) else None), element
    return None, None


# -- view state values ----------------------------------------------------------------------


def text_input(value: str | None) -> Json:
    """state.values entry of a plain_text_input."""
    return {"type": "plain_text_input", "value": value}


def static_select(value: str, text: str | None = None) -> Json:
    """state.values entry of a static_select with `value` chosen."""
    option = {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    return {"type": "static_select", "selected_option": option}


def datepicker(date: str) -> Json:
    """state.values entry of a datepicker ("YYYY-MM-DD")."""
    return {"type": "datepicker", "selected_date": date}


def timepicker(hhmm: str, timezone: str | None = None) -> Json:
    """state.values entry of a timepicker ("HH:MM")."""
    entry: Json = {"type": "timepicker", "selected_time": hhmm}
    if timezone:
        entry["timezone"] = timezone
    return entry


def users_select(user_id: str) -> Json:
    """state.values entry of a users_select."""
    return {"type": "users_select", "selected_user": user_id}


def state_values(values: Mapping[str, Any]) -> Json:
    """Normalise `values` into Slack's `{block_id: {action_id: {type, ...}}}` state shape.

    Accepts that shape as is; a bare string becomes a plain_text_input value; and a flat
    `{action_id: value}` entry becomes block `action_id` → action `action_id`.
    """
    shaped: Json = {}
    for block_id, entry in values.items():
        if isinstance(entry, Mapping) and "type" not in entry:
            shaped[block_id] = {action_id: _element_state(v) for action_id, v in entry.items()}
        else:
            shaped[block_id] = {block_id: _element_state(entry)}
    return shaped


def _element_state(value: Any) -> Json:
    """One action's state: an element-state dict as given, or text for a plain value."""
    if isinstance(value, Mapping) and "type" in value:
        return dict(value)
    return text_input(None if value is None else str(value))
