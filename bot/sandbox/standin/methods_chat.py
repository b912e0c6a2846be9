"""chat.* and reactions.add: posting, editing and deleting messages with Slack's checks.

Each handler takes the workspace and the decoded request arguments and returns the success body
(without "ok"); failures raise `SlackError` with Slack's error code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .blocks import MAX_MESSAGE_BLOCKS, check_blocks, check_message_text
from .errors import SlackError
from .workspace import BOT_ID, Json, Workspace, rich_text_blocks

Handler = Callable[[Workspace, Json], Json]

# What Slack stores as `text` when a message only has blocks.
BLOCKS_ONLY_FALLBACK = "This content can't be displayed."


def check_content(args: Json, *, require: bool = True) -> None:
    """Slack's content checks shared by posting and updating: length, blocks, attachments, no_text."""
    text = args.get("text")
    check_message_text(text)
    if args.get("blocks") is not None:
        check_blocks(args["blocks"], max_blocks=MAX_MESSAGE_BLOCKS)
    attachments = args.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise SlackError("invalid_attachments")
    if require and not text and not args.get("blocks") and not attachments:
        raise SlackError("no_text")


def _text(args: Json) -> str:
    """The `text` Slack stores: the given text, or its fallback for block-only messages."""
    text = args.get("text")
    return str(text) if text else BLOCKS_ONLY_FALLBACK if args.get("blocks") or args.get("attachments") else ""


_EVENT_TYPE = re.compile(r"[A-Za-z0-9_]{1,255}")


def check_metadata(metadata: Any) -> None:
    """Message metadata as Slack takes it: {"event_type": word characters, "event_payload": object}."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not isinstance(metadata.get("event_payload"), dict):
        raise SlackError("invalid_metadata_format")
    if not isinstance(metadata.get("event_type"), str) or not _EVENT_TYPE.fullmatch(metadata["event_type"]):
        raise SlackError("invalid_metadata_schema")


def post_message(ws: Workspace, args: Json) -> Json:
    """chat.postMessage: store the bot's message (a thread reply when thread_ts is given), with its
    `metadata` (returned by conversations.history with include_all_metadata)."""
    channel = ws.resolve_channel(args.get("channel"))
    check_content(args)
    check_metadata(args.get("metadata"))
    ts = ws.next_ts()
    text = _text(args)
    thread_ts = args.get("thread_ts") or None
    extra = {"thread_ts": thread_ts, "attachments": args.get("attachments"), "metadata": args.get("metadata")}
    if thread_ts:
        parent = ws.find_message(channel, thread_ts)
        extra["parent_user_id"] = parent.get("user") if parent else None
    message = ws.bot_message(ts, text, args.get("blocks"), extra)
    ws.add_message(channel, message)
    ws.mark_auto_blocks(channel, ts, args.get("blocks") is None)
    return {"channel": channel, "ts": ts, "message": dict(message)}


def post_ephemeral(ws: Workspace, args: Json) -> Json:
    """chat.postEphemeral: recorded in `ws.ephemerals`, never in the channel history."""
    channel = ws.resolve_channel(args.get("channel"))
    if not args.get("user"):
        raise SlackError("user_not_found")
    check_content(args)
    ts = ws.next_ts()
    ws.ephemerals.append(
        {"channel": channel, "user": args["user"], "ts": ts, "text": _text(args),
         "blocks": args.get("blocks"), "thread_ts": args.get("thread_ts")}
    )  # fmt: skip
    return {"message_ts": ts}


def _own_message(ws: Workspace, args: Json, ts_key: str, not_yours: str) -> tuple[str, Json]:
    """The bot's stored message named by channel + `ts_key`, or message_not_found / `not_yours`."""
    channel = ws.resolve_channel(args.get("channel"))
    message = ws.find_message(channel, args.get(ts_key))
    if message is None:
        raise SlackError("message_not_found")
    if message.get("bot_id") != BOT_ID:
        raise SlackError(not_yours)
    return channel, message


def update(ws: Workspace, args: Json) -> Json:
    """chat.update: replace text; blocks/attachments are kept unless given (`[]` clears them)."""
    channel, message = _own_message(ws, args, "ts", "cant_update_message")
    check_content(args, require=False)
    text = args.get("text")
    blocks = args.get("blocks")
    attachments = args.get("attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if text is not None:
        message["text"] = str(text) or BLOCKS_ONLY_FALLBACK
    if blocks is not None:
        message["blocks"] = blocks
        ws.mark_auto_blocks(channel, message["ts"], False)
    elif ws.has_auto_blocks(channel, message["ts"]):
        message["blocks"] = rich_text_blocks(message["text"], message["ts"])
    if attachments is not None:
        message["attachments"] = attachments
    message["edited"] = {"user": message["user"], "ts": ws.next_ts()}
    return {"channel": channel, "ts": message["ts"], "text": message["text"], "message": dict(message)}


def delete(ws: Workspace, args: Json) -> Json:
    """chat.delete: remove the bot's own message."""
    channel, message = _own_message(ws, args, "ts", "cant_delete_message")
    ws.remove_message(channel, message["ts"])
    return {"channel": channel, "ts": message["ts"]}


def get_permalink(ws: Workspace, args: Json) -> Json:
    """chat.getPermalink for any stored message (bot's or a user's sent through the events client)."""
    channel = ws.resolve_channel(args.get("channel"))
    message = ws.find_message(channel, args.get("message_ts"))
    if message is None:
        raise SlackError("message_not_found")
    return {"channel": channel, "permalink": ws.permalink(channel, message)}


def reactions_add(ws: Workspace, args: Json) -> Json:
    """reactions.add: permissive about the message (user messages may be unknown), strict on repeats."""
    channel = ws.resolve_channel(args.get("channel"))
    name, ts = args.get("name"), args.get("timestamp")
    if not ts:
        raise SlackError("no_item_specified")
    if not name or not isinstance(name, str):
        raise SlackError("invalid_name")
    message = ws.find_message(channel, ts)
    if message is None:
        message = {"ts": ts}
        ws.reactions_on_unknown.setdefault((channel, ts), message)
        message = ws.reactions_on_unknown[(channel, ts)]
    reactions: list[Json] = message.setdefault("reactions", [])
    reaction = next((r for r in reactions if r["name"] == name.strip(":")), None)
    if reaction is not None and ws.bot_user_id in reaction["users"]:
        raise SlackError("already_reacted")
    if reaction is None:
        reaction = {"name": name.strip(":"), "users": [], "count": 0}
        reactions.append(reaction)
    reaction["users"].append(ws.bot_user_id)
    reaction["count"] += 1
    return {}


HANDLERS: dict[str, Handler] = {
    "chat.postMessage": post_message,
    "chat.postEphemeral": post_ephemeral,
    "chat.update": update,
    "chat.delete": delete,
    "chat.getPermalink": get_permalink,
    "reactions.add": reactions_add,
}
