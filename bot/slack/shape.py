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
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


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
        if payload.get("type") == "event_callback" and not (
            isinstance(payload.get("event"), dict) and isinstance(payload["event"].get("type"), str)
        ):
            return "event_callback without an event object"
        return None
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        payload = _json_object(form["payload"][0])
        if payload is None:
            return "payload is not a JSON object"
        if not isinstance(payload.get("type"), str):
            return "payload has no type"
        if payload["type"] == "block_actions" and not isinstance(payload.get("actions"), list):
            return "block_actions without actions"
        return None
    if "command" in form or "ssl_check" in form:
        return None
    return "neither a slash command, an event nor an interaction"
