"""The fake workspace's state: team, bot identity, users, channels, messages and views.

The Web API method modules read and change this; tests read it directly (`messages_in`,
`channels`, `users`, `usergroups`). IDs and timestamps are deterministic and increasing so a
failing test prints the same values every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .errors import SlackError

TEAM_ID = "T0TEST"
TEAM_DOMAIN = "guardrail-test"
TEAM_NAME = "Guardrail Test"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "guardrail"
APP_ID = "A0GUARD"
DEFAULT_TZ = "Europe/Berlin"
GENERAL_ID = "C0GENERAL"
_TS_BASE_MICROS = 1_700_000_000 * 1_000_000

Json = dict[str, Any]


class Workspace:
    """One Slack team as the Web API stand-in knows it.

    `users` maps user id to a (partial) user object, filled in by `user_info`; `usergroups` maps a
    subteam id ("S…") to its member ids; `channels` maps channel id to its info and `members` to
    its member ids. "#general" (C0GENERAL) exists from the start with alice and the bot in it.
    With `strict_channels`, posting to an id the workspace does not know is `channel_not_found`.
    """

    team_id = TEAM_ID
    bot_user_id = BOT_USER_ID
    bot_id = BOT_ID
    app_id = APP_ID

    def __init__(
        self,
        *,
        strict_channels: bool = False,
        users: Mapping[str, Json] | None = None,
        usergroups: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.strict_channels = strict_channels
        self._initial_users = {k: dict(v) for k, v in (users or {}).items()}
        self._initial_usergroups = {k: list(v) for k, v in (usergroups or {}).items()}
        self.reset_state()

    def reset_state(self) -> None:
        """Back to the seeded workspace (keeps `strict_channels` and the constructor's users/groups)."""
        self.users: dict[str, Json] = {
            BOT_USER_ID: {"name": BOT_NAME, "is_bot": True},
            "U0ALICE": {"name": "alice"},
            **{k: dict(v) for k, v in self._initial_users.items()},
        }
        self.usergroups: dict[str, list[str]] = {k: list(v) for k, v in self._initial_usergroups.items()}
        self.channels: dict[str, Json] = {}
        self.members: dict[str, list[str]] = {}
        self.messages: dict[str, list[Json]] = {}
        self._by_ts: dict[tuple[str, str], Json] = {}  # (channel, ts) → message: O(1) lookups at 40,000 posts
        self.ephemerals: list[Json] = []
        self.views: dict[str, Json] = {}
        self.reactions_on_unknown: dict[tuple[str, str], Json] = {}
        self._auto_blocks: set[tuple[str, str]] = set()
        self._ts_counter = 0
        self._id_counter = 0
        self.add_channel("general", channel_id=GENERAL_ID, members=["U0ALICE", BOT_USER_ID], is_general=True)

    # -- ids and timestamps ------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message ts ("1700000000.000100", "1700000000.000200", …)."""
        self._ts_counter += 1
        micros = _TS_BASE_MICROS + self._ts_counter * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def next_id(self, prefix: str) -> str:
        """A fresh Slack-looking id with the given type prefix ("C", "V", …)."""
        self._id_counter += 1
        return f"{prefix}0{self._id_counter:07X}"

    # -- channels ----------------------------------------------------------------------------

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        members: list[str] | None = None,
        is_private: bool = False,
        is_general: bool = False,
    ) -> Json:
        """Create a channel directly (test setup), bypassing name validation. Returns its info."""
        channel_id = channel_id or self.next_id("G" if is_private else "C")
        now = int(datetime.now(UTC).timestamp())
        self.channels[channel_id] = {
            "id": channel_id, "name": name, "name_normalized": name, "is_channel": not is_private,
            "is_group": is_private, "is_im": False, "is_mpim": False, "is_private": is_private,
            "is_archived": False, "is_general": is_general, "is_shared": False, "is_ext_shared": False,
            "is_org_shared": False, "created": now, "creator": BOT_USER_ID, "context_team_id": TEAM_ID,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0}, "previous_names": [],
        }  # fmt: skip
        self.members[channel_id] = list(members or [])
        return self.channel_info(channel_id)

    def channel_info(self, channel_id: str, *, with_num_members: bool = False) -> Json:
        """The channel object Slack returns, `is_member` from the bot's point of view."""
        info = dict(self.channels[channel_id])
        info["is_member"] = BOT_USER_ID in self.members.get(channel_id, [])
        if with_num_members:
            info["num_members"] = len(self.members.get(channel_id, []))
        return info

    def channel_by_name(self, name: str) -> str | None:
        """The id of the channel called `name` ("#" optional), if any."""
        name = name.removeprefix("#")
        return next((cid for cid, info in self.channels.items() if info["name"] == name), None)

    def resolve_channel(self, channel: Any, *, must_exist: bool = False) -> str:
        """Turn a `channel` argument into a channel id as Slack does, or raise channel_not_found.

        Names ("#deploys" or "deploys") resolve to ids, a user id means the DM with that user
        ("D…"). Unknown ids pass unless `must_exist` or `strict_channels`.
        """
        if not isinstance(channel, str) or not channel:
            raise SlackError("channel_not_found")
        if channel in self.channels:
            return channel
        by_name = self.channel_by_name(channel)
        if by_name is not None:
            return by_name
        if channel.startswith("#"):
            raise SlackError("channel_not_found")
        if channel[0] in "UW" and not must_exist:
            return "D" + channel[1:]
        if must_exist or self.strict_channels:
            raise SlackError("channel_not_found")
        return channel

    # -- messages ----------------------------------------------------------------------------

    def messages_in(self, channel: str) -> list[Json]:
        """Messages in `channel` (id or name), oldest first, thread replies included."""
        channel_id = self.channel_by_name(channel) or channel
        return self.messages.get(channel_id, [])

    def find_message(self, channel: str, ts: Any) -> Json | None:
        """The stored message with `ts` in `channel`, if any."""
        return self._by_ts.get((channel, ts)) if isinstance(ts, str) else None

    def add_message(self, channel: str, message: Json) -> None:
        """Store a message (bot or user); a second message with the same ts is ignored (a retry)."""
        if self.find_message(channel, message.get("ts")) is not None:
            return
        self.messages.setdefault(channel, []).append(message)
        if isinstance(message.get("ts"), str):
            self._by_ts[(channel, message["ts"])] = message
        thread_ts = message.get("thread_ts")
        parent = self.find_message(channel, thread_ts) if thread_ts != message.get("ts") else None
        if parent is not None:
            parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
            parent["latest_reply"] = message["ts"]
            parent.setdefault("thread_ts", parent["ts"])

    def remove_message(self, channel: str, ts: str) -> None:
        """Delete the message with `ts` from `channel` (chat.delete)."""
        message = self._by_ts.pop((channel, ts), None)
        if message is not None:
            history = self.messages[channel]
            del history[next(i for i, m in enumerate(history) if m is message)]

    def bot_message(self, ts: str, text: str, blocks: list[Any] | None, extra: Json) -> Json:
        """A message posted by the bot, shaped like `message` in chat.postMessage's response."""
        message: Json = {
            "user": BOT_USER_ID, "type": "message", "ts": ts, "bot_id": BOT_ID, "app_id": APP_ID,
            "text": text, "team": TEAM_ID,
            "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME, "team_id": TEAM_ID,
                            "deleted": False},
        }  # fmt: skip
        message["blocks"] = blocks if blocks is not None else rich_text_blocks(text, ts)
        message.update({k: v for k, v in extra.items() if v is not None})
        return message

    def mark_auto_blocks(self, channel: str, ts: str, auto: bool) -> None:
        """Remember whether a message's blocks were generated from its text (chat.update regenerates)."""
        if auto:
            self._auto_blocks.add((channel, ts))
        else:
            self._auto_blocks.discard((channel, ts))

    def has_auto_blocks(self, channel: str, ts: str) -> bool:
        """True when the message's blocks are the rich_text Slack made from its `text`."""
        return (channel, ts) in self._auto_blocks

    def permalink(self, channel: str, message: Json) -> str:
        """The message's permalink, with thread parameters for replies like Slack's."""
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return link

    # -- users -------------------------------------------------------------------------------

    def user_info(self, user_id: str) -> Json:
        """A full user object: `users[user_id]` over defaults, `tz_offset` computed from `tz`."""
        partial = self.users.get(user_id, {})
        name = str(partial.get("name", user_id.lower()))
        tz = str(partial.get("tz", DEFAULT_TZ))
        offset = ZoneInfo(tz).utcoffset(datetime.now(UTC).replace(tzinfo=None))
        user: Json = {
            "id": user_id, "team_id": TEAM_ID, "name": name, "deleted": False, "real_name": name.title(),
            "tz": tz, "tz_label": tz, "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": False, "is_owner": False, "is_bot": False, "is_app_user": False,
            "profile": {"real_name": name.title(), "display_name": name, "email": f"{name}@example.com"},
        }  # fmt: skip
        user.update(partial)
        return user


def rich_text_blocks(text: str, ts: str) -> list[Any]:
    """The rich_text block Slack attaches to a plain-text message."""
    block_id = hashlib.sha1(ts.encode()).hexdigest()[:4]
    return [
        {
            "type": "rich_text",
            "block_id": block_id,
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]
