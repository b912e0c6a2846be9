"""conversations.*: creating incident channels, inviting people, membership and info.

Handlers follow Slack's rules for channel names and membership errors; they take the workspace
and decoded arguments and return the success body (without "ok").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import SlackError
from .workspace import Json, Workspace

Handler = Callable[[Workspace, Json], Json]

MAX_CHANNEL_NAME = 80
_VALID_NAME = re.compile(r"[a-z0-9_-]+")


def _truthy(value: Any) -> bool:
    """Slack's boolean arguments arrive as true/"true"/"1"."""
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1")) or value == 1


def _user_list(value: Any) -> list[str]:
    """A `users` argument: comma-separated string or list."""
    if isinstance(value, list):
        return [str(u).strip() for u in value if str(u).strip()]
    if isinstance(value, str):
        return [u.strip() for u in value.split(",") if u.strip()]
    return []


def create(ws: Workspace, args: Json) -> Json:
    """conversations.create: name rules (lowercase, a-z0-9-_, ≤80) and name_taken."""
    name = args.get("name")
    if not isinstance(name, str) or not name:
        raise SlackError("invalid_name_required")
    if len(name) > MAX_CHANNEL_NAME:
        raise SlackError("invalid_name_maxlength")
    if not _VALID_NAME.fullmatch(name):
        raise SlackError("invalid_name_specials")
    if not name.strip("-_"):
        raise SlackError("invalid_name_punctuation")
    if ws.channel_by_name(name) is not None:
        raise SlackError("name_taken")
    info = ws.add_channel(name, members=[ws.bot_user_id], is_private=_truthy(args.get("is_private")))
    return {"channel": info}


def invite(ws: Workspace, args: Json) -> Json:
    """conversations.invite: already_in_channel only when every user is already a member."""
    channel = ws.resolve_channel(args.get("channel"), must_exist=True)
    users = _user_list(args.get("users"))
    if not users:
        raise SlackError("no_user")
    if ws.bot_user_id in users:
        raise SlackError("cant_invite_self")
    members = ws.members[channel]
    new = [u for u in users if u not in members]
    if not new:
        errors = [{"user": u, "ok": False, "error": "already_in_channel"} for u in users]
        raise SlackError("already_in_channel", errors=errors)
    members.extend(dict.fromkeys(new))
    return {"channel": ws.channel_info(channel)}


def join(ws: Workspace, args: Json) -> Json:
    """conversations.join: public channels only; joining twice warns like Slack does."""
    channel = ws.resolve_channel(args.get("channel"), must_exist=True)
    if ws.channels[channel]["is_private"]:
        raise SlackError("method_not_supported_for_channel_type")
    members = ws.members[channel]
    body: Json = {}
    if ws.bot_user_id in members:
        body = {"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}}
    else:
        members.append(ws.bot_user_id)
    return {"channel": ws.channel_info(channel), **body}


def info(ws: Workspace, args: Json) -> Json:
    """conversations.info (num_members with include_num_members)."""
    channel = ws.resolve_channel(args.get("channel"), must_exist=True)
    return {"channel": ws.channel_info(channel, with_num_members=_truthy(args.get("include_num_members")))}


def members(ws: Workspace, args: Json) -> Json:
    """conversations.members with cursor pagination (the cursor is an opaque offset)."""
    channel = ws.resolve_channel(args.get("channel"), must_exist=True)
    limit = int(args.get("limit") or 100) or 100
    start = int(args["cursor"]) if str(args.get("cursor") or "").isdigit() else 0
    everyone = ws.members[channel]
    page = everyone[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(everyone) else ""
    return {"members": page, "response_metadata": {"next_cursor": next_cursor}}


MAX_HISTORY_LIMIT = 999


def history(ws: Workspace, args: Json) -> Json:
    """conversations.history: top-level messages, newest first, paged with an opaque cursor.

    Like Slack, `metadata` is only returned with `include_all_metadata`; thread replies are left
    out (except those broadcast to the channel); `oldest`/`latest` bound the ts (exclusive unless
    `inclusive`).
    """
    channel = ws.resolve_channel(args.get("channel"))  # unknown ids pass unless strict, as for posting
    if channel in ws.channels and ws.bot_user_id not in ws.members[channel]:
        raise SlackError("channel_not_found" if ws.channels[channel]["is_private"] else "not_in_channel")
    limit = min(int(args.get("limit") or 100) or 100, MAX_HISTORY_LIMIT)
    start = int(args["cursor"]) if str(args.get("cursor") or "").isdigit() else 0
    inclusive = _truthy(args.get("inclusive"))
    oldest, latest = args.get("oldest"), args.get("latest")

    def within(ts: str) -> bool:
        if oldest and not (float(ts) >= float(oldest) if inclusive else float(ts) > float(oldest)):
            return False
        return not (latest and not (float(ts) <= float(latest) if inclusive else float(ts) < float(latest)))

    top = [
        m
        for m in reversed(ws.messages.get(channel, []))
        if (m.get("thread_ts") in (None, m.get("ts")) or m.get("subtype") == "thread_broadcast")
        and within(str(m.get("ts")))
    ]
    with_metadata = _truthy(args.get("include_all_metadata"))
    page = [
        dict(m) if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
        for m in top[start : start + limit]
    ]
    more = start + limit < len(top)
    return {
        "messages": page,
        "has_more": more,
        "pin_count": 0,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


HANDLERS: dict[str, Handler] = {
    "conversations.create": create,
    "conversations.invite": invite,
    "conversations.join": join,
    "conversations.info": info,
    "conversations.members": members,
    "conversations.history": history,
}
