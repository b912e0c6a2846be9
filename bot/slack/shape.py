"""A structural check of signed Slack bodies before Bolt sees them.

Bolt assumes well-formed payloads: a signed body whose `event` is a string, say, crashes a
middleware and becomes a 500, which Slack then retries. We answer such bodies with a 400 instead.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _optional(mapping: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
    return key not in mapping or mapping[key] is None or isinstance(mapping[key], kind)


def _event_problem(payload: dict[str, Any]) -> str | None:
    event = payload.get("event")
    if payload.get("type") != "event_callback":
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "event_callback without an event object"
    for key in ("channel", "user", "ts", "thread_ts", "subtype", "bot_id"):
        if not _optional(event, key, str):
            return f"event.{key} is not a string"
    if not _optional(payload, "authorizations", list):
        return "authorizations is not a list"
    return None


def _interaction_problem(payload: dict[str, Any]) -> str | None:
    kind = payload.get("type")
    if not isinstance(kind, str):
        return "payload has no type"
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "payload has no user"
    for key in ("message", "channel", "container", "view"):
        if not _optional(payload, key, dict):
            return f"{key} is not an object"
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action without an action_id"
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
            return "view without a callback_id"
        state = view.get("state", {})
        values = state.get("values", {}) if isinstance(state, dict) else None
        if not isinstance(values, dict) or not all(
            isinstance(block, dict) and all(isinstance(v, dict) for v in block.values()) for block in values.values()
        ):
            return "view state is not Slack's shape"
    return None


def malformed_reason(body: bytes, content_type: str) -> str | None:
    """Why this body is not a Slack payload guardrail can process, or None when it looks fine."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if content_type.startswith("application/json"):
        payload = _json_object(text)
        if payload is None:
            return "body is not a JSON object"
        return _event_problem(payload)
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        payload = _json_object(form["payload"][0])
        if payload is None:
            return "payload is not a JSON object"
        return _interaction_problem(payload)
    if "ssl_check" in form:
        return None
    if "command" in form:
        missing = [k for k in ("command", "user_id", "channel_id", "response_url") if not form.get(k, [""])[0]]
        return f"slash command without {', '.join(missing)}" if missing else None
    return "neither a slash command, an event nor an interaction"
