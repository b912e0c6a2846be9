"""A step whose process died shows as interrupted — once, across replicas — and is never re-run silently."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Call
from bot.services.incidents import ClaimedRun, StepRequest
from tests.support.bot import BotHarness, running_bot
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions
from tests.support.incidents import (
    FakeFreezes,
    IncidentBot,
    add_sre_group,
    declare,
    fakes,
    incident_bot,
    incident_config,
    text_of,
    value_of,
)

RUN = "incident.step.run:"
CONFIRM = "incident.step.confirm:"


async def claim_and_die(bot: BotHarness, step: str = "rollback") -> ClaimedRun:
    """What a process that is killed right after claiming a run leaves behind: a running row whose
    lease nobody renews (the claim is the real one a click makes; the action never runs)."""
    claimed = await bot.runtime.incidents.steps.claim(
        StepRequest(incident_id=1, step_id=step, actor="U0CAROL", seen_attempt=0, confirmed_rerun=True)
    )
    assert isinstance(claimed, ClaimedRun), claimed
    return claimed


def lease_of(bot: BotHarness) -> timedelta:
    return bot.runtime.incidents.leases.lease


async def test_a_dead_run_is_shown_interrupted_in_the_thread_the_playbook_the_status_and_the_audit(
    ibot: IncidentBot,
) -> None:
    bot = ibot.bot
    channel = await declare(bot)
    await claim_and_die(bot)
    bot.clock.advance(lease_of(bot) - timedelta(seconds=1))
    assert await bot.runtime.incidents.sweep_interrupted() == []  # the lease still runs: not yet

    fresh = ibot.fake.mark()
    bot.clock.advance(timedelta(seconds=2))
    await bot.runtime.incidents.sweep_interrupted()  # (or the scheduler's sweep, if it ticked first)
    told = await ibot.fake.wait_for("chat.postMessage", lambda c: "was *interrupted*" in text_of(c), after=fresh)
    assert "Roll back last deploy" in text_of(told) and "may already have reached its target" in text_of(told)
    assert told.args["thread_ts"] == ibot.fake.messages_in(channel)[1]["ts"]
    await ibot.fake.wait_for("chat.update", lambda c: "interrupted" in blocks_text(c.args["blocks"]), after=fresh)
    assert "⚠️ interrupted" in blocks_text(ibot.fake.messages_in(channel)[1]["blocks"])

    [entry] = [e for e in await bot.runtime.audit.latest(10) if e.action == "incident.step.interrupted"]
    assert (
        entry.actor,
        entry.subject,
        entry.details["step"],
        entry.details["attempt"],
        entry.details["started_by"],
    ) == ("system", "incident:1", "rollback", 1, "U0CAROL")
    assert entry.details["lease_owner"] == bot.runtime.incidents.leases.owner

    await bot.slack.slash("/incident", "status", user_id="U0DAVE", channel_id=channel)
    status = await ibot.fake.wait_for_response(lambda r: "Roll back last deploy" in blocks_text(r.body.get("blocks")))
    assert "⚠️ interrupted" in blocks_text(status.body["blocks"])
    assert await bot.runtime.incidents.sweep_interrupted() == []  # told once
    assert ibot.actions.runs["rollback"] == 0  # and nothing ran by itself
    draft = await bot.runtime.incidents.postmortem_markdown(1)
    assert "Step **Roll back last deploy** (run 1) INTERRUPTED" in draft
    assert "| Roll back last deploy | 1 | U0CAROL |" in draft and "interrupted: may have reached its target" in draft


async def test_running_an_interrupted_step_again_needs_a_confirmation_that_it_may_have_reached_the_target(
    ibot: IncidentBot,
) -> None:
    bot = ibot.bot
    channel = await declare(bot)
    await claim_and_die(bot, "verify")  # even a step that changes nothing asks: it was cut off mid-way
    bot.clock.advance(lease_of(bot) + timedelta(seconds=1))
    await bot.runtime.incidents.sweep_interrupted()
    await ibot.fake.wait_for("chat.update", lambda c: "interrupted" in blocks_text(c.args["blocks"]))

    await bot.slack.block_action(
        RUN + "verify", value_of(bot, channel, RUN + "verify"), user_id="U0DAVE", channel_id=channel
    )
    ask = await ibot.fake.wait_for_response(lambda r: "was interrupted" in str(r.text))
    assert ask.response_type == "ephemeral" and ibot.actions.runs["verify"] == 0
    assert "may already have reached the target" in str(ask.text)
    button = ask.body["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Run again anyway"
    assert "may already have reached the target" in button["confirm"]["text"]["text"]

    fresh = ibot.fake.mark()
    await bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
    started = await ibot.fake.wait_for("chat.postMessage", lambda c: "started by <@U0DAVE>" in text_of(c), after=fresh)
    assert "Run 1 was interrupted" in text_of(started)
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
    assert ibot.actions.runs["verify"] == 1
    started_entries = [e for e in await bot.runtime.audit.latest(10) if e.action == "incident.step.started"]
    assert sorted((e.details["attempt"], e.details["after_interrupted"]) for e in started_entries) == [
        (1, False),
        (2, True),
    ]

    # the confirmation is single-use like every button
    await bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "ran since that button was drawn" in str(r.text))
    assert ibot.actions.runs["verify"] == 1


async def test_two_replicas_sweeping_at_once_mark_a_dead_run_interrupted_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    config = incident_config(tmp_path)
    actions = FakeActions()
    async with (
        running_bot(
            database_url=database_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            overrides=fakes(actions, FakeFreezes()),
        ) as one,
        running_bot(
            database_url=database_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            overrides=fakes(actions, FakeFreezes()),
        ) as two,
    ):
        add_sre_group(fake_slack)
        channel = await declare(one)
        await claim_and_die(one, "rollback")
        await claim_and_die(one, "disable-worker")
        clock.advance(lease_of(one) + timedelta(seconds=1))
        fresh = fake_slack.mark()
        rounds = await asyncio.gather(
            *(bot.runtime.incidents.sweep_interrupted() for _ in range(3) for bot in (one, two))
        )
        won = sorted((run.key, run.attempt) for found in rounds for run in found)
        # a scheduler tick may win a race too; either way each run is interrupted exactly once
        entries = [e for e in await one.runtime.audit.latest(50) if e.action == "incident.step.interrupted"]
        assert sorted((e.details["step"], e.details["attempt"]) for e in entries) == [
            ("disable-worker", 1),
            ("rollback", 1),
        ]
        assert len(won) <= 2 and len(set(won)) == len(won)

        def told(c: Call, label: str = "") -> bool:
            return "was *interrupted*" in text_of(c) and label in text_of(c)

        for label in ("Roll back last deploy", "Disable worker"):
            await fake_slack.wait_for("chat.postMessage", partial(told, label=label), after=fresh)
        assert len([c for c in fake_slack.calls_to("chat.postMessage", after=fresh) if told(c)]) == 2
        assert (await one.runtime.audit.verify()).ok
        assert "⚠️ interrupted" in blocks_text(fake_slack.messages_in(channel)[1]["blocks"])


async def test_a_dead_run_the_sweep_cannot_mark_is_logged_and_skipped_and_the_others_are_still_marked(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with incident_bot(
        database_url=postgres_url, config_dir=incident_config(tmp_path), fake=fake_slack, clock=clock
    ) as ibot:
        bot = ibot.bot
        await declare(bot)
        # A running row of an incident that does not exist (left by a manual cleanup: foreign keys off),
        # first in the sweep's order.
        async with bot.runtime.db.unit_of_work() as session:
            await session.execute(text("SET LOCAL session_replication_role = replica"))
            await session.execute(
                text(
                    "INSERT INTO incident_step (incident_id, step_key, status, attempt, actor, started_at, "
                    "lease_until) "
                    "VALUES (999, 'rollback', 'running', 1, 'U0GONE', :at, :at)"
                ),
                {"at": clock.now()},
            )
        await claim_and_die(bot)
        clock.advance(lease_of(bot) + timedelta(seconds=1))
        fresh = ibot.fake.mark()
        [marked] = await bot.runtime.incidents.sweep_interrupted()
        assert (marked.incident.id, marked.key) == (1, "rollback")
        await ibot.fake.wait_for("chat.postMessage", lambda c: "was *interrupted*" in text_of(c), after=fresh)
        [skipped] = [r for r in caplog.records if "could not mark step rollback of incident 999" in r.getMessage()]
        assert skipped.levelname == "ERROR" and "does not exist" in skipped.getMessage()
        assert await bot.runtime.incidents.sweep_interrupted() == []
        assert len([r for r in caplog.records if "incident 999" in r.getMessage()]) == 1  # logged once
