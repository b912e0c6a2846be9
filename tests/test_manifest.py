"""slack-manifest.yml and the bot agree: every declared command/event has a handler and back."""

from __future__ import annotations

import yaml

from bot.slack.ids import MESSAGE_EVENTS, Command, Event
from tests.support.bot import BotHarness
from tests.support.paths import ROOT

MANIFEST = yaml.safe_load((ROOT / "slack-manifest.yml").read_text())


def test_manifest_declares_exactly_the_commands_the_bot_handles() -> None:
    declared = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert declared == {c.value for c in Command}


def test_manifest_subscribes_to_exactly_the_events_the_bot_handles() -> None:
    declared = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    expected = {e.value for e in Event if e is not Event.MESSAGE} | set(MESSAGE_EVENTS)
    assert declared == expected


def test_manifest_points_every_url_at_the_events_endpoint() -> None:
    urls = [c["url"] for c in MANIFEST["features"]["slash_commands"]]
    urls += [
        MANIFEST["settings"]["event_subscriptions"]["request_url"],
        MANIFEST["settings"]["interactivity"]["request_url"],
    ]
    assert all(u.endswith("/slack/events") for u in urls)
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True


async def test_every_declared_command_and_event_is_handled(bot: BotHarness) -> None:
    for command in MANIFEST["features"]["slash_commands"]:
        response = await bot.slack.slash(command["command"], "")
        assert response.status_code == 200, command["command"]
    for event in ("message", "app_mention"):
        response = await bot.slack.event(
            {"type": event, "text": "hi", "user": "U0ALICE", "channel": "C0GENERAL", "ts": "1.000001"}
        )
        assert response.status_code == 200, event


async def test_an_undeclared_command_is_not_handled(bot: BotHarness) -> None:
    response = await bot.slack.slash("/not-ours", "")
    assert response.status_code == 404
