"""Every slash command, event and action id guardrail answers, in one place.

The manifest test checks `slack-manifest.yml` against these, so a handler can't exist
without being declared to Slack, or be declared without a handler.
"""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    FREEZE = "/freeze"
    INCIDENT = "/incident"
    HEALTH = "/health"
    AUDIT = "/audit"


class Event(StrEnum):
    MESSAGE = "message"
    APP_MENTION = "app_mention"


# Message events Slack delivers for each channel type the bot can be in.
MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")


class Action(StrEnum):
    """Action ids that cross features. Features keep their own ids in their own modules."""

    # On a health answer; value is JSON {"services": [...]}. Handled by the incident feature.
    DECLARE_INCIDENT = "health.declare_incident"
