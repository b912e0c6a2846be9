"""`freeze.on_incident`: a sev1 freezes deploys while it is open; resolve offers to lift it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.clock import FakeClock
from tests.support.incidents import (
    PLAYBOOK,
    FakeFreezer,
    IncidentBot,
    declare,
    incident_bot,
    incident_config,
    text_of,
)

ON_INCIDENT = PLAYBOOK + "freeze:\n  on_incident: [sev1]\n"


@pytest.fixture
async def fbot(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[tuple[IncidentBot, FakeFreezer]]:
    async with incident_bot(
        database_url=sqlite_url,
        config_dir=incident_config(tmp_path, ON_INCIDENT),
        fake=fake_slack,
        clock=clock,
        fake_freezer=True,
    ) as ibot:
        assert ibot.freezer is not None
        yield ibot, ibot.freezer


async def test_a_sev1_freezes_deploys_its_own_fixes_still_run_and_resolve_offers_the_lift(
    fbot: tuple[IncidentBot, FakeFreezer],
) -> None:
    ibot, freezer = fbot
    channel = await declare(ibot.bot, "Checkout down sev1")
    assert freezer.started == [(1, "production", "Incident #1: Checkout down")]
    header = blocks_text(ibot.fake.messages_in(channel)[0]["blocks"])
    assert "Deploys are frozen for this incident (freeze #101)" in header

    # the incident's own freeze does not ask for the freeze override
    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
    assert ibot.actions.runs["rollback"] == 1

    await ibot.bot.slack.slash("/incident", "resolve fixed", user_id="U0CAROL", channel_id=channel)
    resolved = await ibot.fake.wait_for_response(lambda r: "resolved after" in str(r.text))
    button = resolved.body["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Lift freeze #101" and button["action_id"] == "incident.freeze.lift"

    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0MALLORY", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "Only responders" in str(r.text))
    assert freezer.lifted == []
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
    lifted = await ibot.fake.wait_for_response(lambda r: "lifted by <@U0DAVE>" in str(r.text))
    assert lifted.response_type == "in_channel" and freezer.lifted == [(101, "U0DAVE")]
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "had already ended" in str(r.text))
    actions = [e.action for e in await ibot.bot.runtime.audit.latest(30)]
    for expected in ("incident.freeze_started", "incident.freeze_lift_refused", "incident.freeze_lifted"):
        assert expected in actions
    assert actions.count("incident.freeze_lifted") == 1  # the second press lifted nothing: nothing to record


async def test_lower_severities_do_not_freeze_and_resolve_offers_nothing(fbot: tuple[IncidentBot, FakeFreezer]) -> None:
    ibot, freezer = fbot
    channel = await declare(ibot.bot, "Search slow sev3")
    assert freezer.started == []
    assert "frozen" not in blocks_text(ibot.fake.messages_in(channel)[0]["blocks"])
    await ibot.bot.slack.slash("/incident", "resolve", user_id="U0CAROL", channel_id=channel)
    resolved = await ibot.fake.wait_for_response(lambda r: "resolved after" in str(r.text))
    assert not any(b["type"] == "actions" for b in resolved.body["blocks"])
    await ibot.bot.slack.block_action(
        "incident.freeze.lift", json.dumps({"i": 1}), user_id="U0CAROL", channel_id=channel
    )
    await ibot.fake.wait_for_response(lambda r: "no freeze of its own" in str(r.text))


async def test_when_the_freeze_cannot_be_started_the_incident_is_still_declared(
    fbot: tuple[IncidentBot, FakeFreezer],
) -> None:
    ibot, freezer = fbot
    freezer.fails_with = RuntimeError("freeze service unavailable")
    channel = await declare(ibot.bot, "Checkout down sev1")
    assert "frozen" not in blocks_text(ibot.fake.messages_in(channel)[0]["blocks"])
    failed = (e for e in await ibot.bot.runtime.audit.latest(10) if e.action == "incident.freeze_failed")
    assert "freeze service unavailable" in next(failed).details["error"]
