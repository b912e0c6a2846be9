"""Typed views of Slack payloads, so features never dig through raw dicts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Control characters never mean anything in a command, and PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """User-typed text without control characters (newlines and tabs stay)."""
    return _CONTROL.sub("", text)


def json_value(text: str) -> Any:
    """A button value or other JSON a client echoes back; None when it is not JSON we can read.

    Button values come back from Slack verbatim, so anyone can forge them: depth bombs included.
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class SlashCommand:
    command: str
    text: str
    user_id: str
    channel_id: str
    response_url: str | None
    trigger_id: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> SlashCommand:
        return cls(
            command=str(body.get("command", "")),
            text=clean_text(str(body.get("text", "") or "")).strip(),
            user_id=str(body.get("user_id", "")),
            channel_id=str(body.get("channel_id", "")),
            response_url=body.get("response_url"),
            trigger_id=body.get("trigger_id"),
        )

    @property
    def args(self) -> list[str]:
        return self.text.split()


@dataclass(frozen=True)
class ButtonClick:
    action_id: str
    value: str
    user_id: str
    channel_id: str | None
    message_ts: str | None
    thread_ts: str | None
    trigger_id: str | None
    response_url: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ButtonClick:
        action = (body.get("actions") or [{}])[0]
        container = body.get("container") or {}
        message = body.get("message") or {}
        return cls(
            action_id=str(action.get("action_id", "")),
            value=str(action.get("value", "") or ""),
            user_id=str((body.get("user") or {}).get("id", "")),
            channel_id=(body.get("channel") or {}).get("id") or container.get("channel_id"),
            message_ts=message.get("ts") or container.get("message_ts"),
            thread_ts=message.get("thread_ts"),
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url"),
        )
