"""auth.test, users.info, usergroups.users.list and views.*: identity, people and modals.

Handlers take the workspace and decoded arguments and return the success body (without "ok").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .blocks import MAX_VIEW_BLOCKS, check_blocks
from .errors import SlackError, invalid_blocks
from .workspace import APP_ID, BOT_ID, BOT_NAME, TEAM_DOMAIN, TEAM_ID, TEAM_NAME, Json, Workspace

Handler = Callable[[Workspace, Json], Json]


def auth_test(ws: Workspace, args: Json) -> Json:
    """auth.test: who the bot token belongs to."""
    return {
        "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": BOT_NAME, "team_id": TEAM_ID,
        "user_id": ws.bot_user_id, "bot_id": BOT_ID, "is_enterprise_install": False,
    }  # fmt: skip


def users_info(ws: Workspace, args: Json) -> Json:
    """users.info: any "U…"/"W…" id is a user (configure details via `ws.users`)."""
    user = args.get("user")
    if not isinstance(user, str) or not user or (user not in ws.users and user[0] not in "UW"):
        raise SlackError("user_not_found")
    return {"user": ws.user_info(user)}


def usergroup_users(ws: Workspace, args: Json) -> Json:
    """usergroups.users.list: members of a subteam from `ws.usergroups`."""
    group = args.get("usergroup")
    if not isinstance(group, str) or group not in ws.usergroups:
        raise SlackError("no_such_subteam")
    return {"users": list(ws.usergroups[group])}


def _check_view(view: Any, *, home: bool = False) -> Json:
    """Slack's checks on a `view` argument; returns it as a dict."""
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]})
    expected = ("home",) if home else ("modal",)
    problems: list[str] = []
    if view.get("type") not in expected:
        problems.append("[ERROR] must be a valid enum value [json-pointer:/view/type]")
    if not home and not view.get("title"):
        problems.append("[ERROR] missing required field: title [json-pointer:/view]")
    if len(str(view.get("private_metadata") or "")) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if problems:
        raise invalid_blocks(problems, error="invalid_arguments")
    check_blocks(view.get("blocks", []), max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks", unique_actions=False)
    return view


def _store_view(ws: Workspace, view: Json, view_id: str, previous: Json | None = None) -> Json:
    """The view object Slack returns (and the events client later submits)."""
    stored: Json = {
        "id": view_id, "team_id": TEAM_ID, "type": view.get("type", "modal"),
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
        "state": {"values": {}}, "hash": hashlib.sha1(f"{view_id}:{ws.next_ts()}".encode()).hexdigest()[:20],
        "title": view.get("title"), "submit": view.get("submit"), "close": view.get("close"),
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "external_id": view.get("external_id", ""),
        "root_view_id": (previous or {}).get("root_view_id", view_id),
        "previous_view_id": None, "app_id": APP_ID, "app_installed_team_id": TEAM_ID, "bot_id": BOT_ID,
    }  # fmt: skip
    ws.views[view_id] = stored
    return {"view": dict(stored)}


def views_open(ws: Workspace, args: Json) -> Json:
    """views.open: needs a trigger_id (any non-empty one is accepted)."""
    if not args.get("trigger_id"):
        raise SlackError(
            "invalid_arguments",
            response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
        )
    return _store_view(ws, _check_view(args.get("view")), ws.next_id("V"))


def views_push(ws: Workspace, args: Json) -> Json:
    """views.push: like views.open, stacked on the current modal."""
    return views_open(ws, args)


def views_update(ws: Workspace, args: Json) -> Json:
    """views.update by view_id or external_id; a stale `hash` is hash_conflict."""
    view_id = args.get("view_id")
    external_id = args.get("external_id")
    if not view_id and external_id:
        view_id = next((k for k, v in ws.views.items() if v.get("external_id") == external_id), None)
    if not view_id or view_id not in ws.views:
        raise SlackError("not_found")
    previous = ws.views[view_id]
    if args.get("hash") and args["hash"] != previous["hash"]:
        raise SlackError("hash_conflict")
    return _store_view(ws, _check_view(args.get("view"), home=previous["type"] == "home"), view_id, previous)


def views_publish(ws: Workspace, args: Json) -> Json:
    """views.publish: one App Home view per user, updated in place."""
    user_id = args.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: user_id"]}
        )
    view = _check_view(args.get("view"), home=True)
    existing = next((k for k, v in ws.views.items() if v["type"] == "home" and v.get("user_id") == user_id), None)
    body = _store_view(ws, view, existing or ws.next_id("V"))
    ws.views[body["view"]["id"]]["user_id"] = user_id
    return body


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "usergroups.users.list": usergroup_users,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
}
