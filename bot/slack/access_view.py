"""How a responder-only refusal reads in Slack."""

from __future__ import annotations

from collections.abc import Sequence


def not_a_responder(only_responders: str, unreadable: Sequence[tuple[str, str]]) -> str:
    """`only_responders` ("Only responders … may …"), unless the real cause is that a group could not
    be read: a member would be told they are not one."""
    if not unreadable:
        return only_responders
    groups = ", ".join(f"<!subteam^{group}>" for group, _ in unreadable)
    why = "; ".join(dict.fromkeys(reason for _, reason in unreadable))
    return (
        f"Could not check your membership of {groups} ({why}), so I cannot tell whether you are a "
        "responder. Nothing was changed; try again in a minute."
    )
