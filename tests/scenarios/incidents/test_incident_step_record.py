"""Recording a step's result: what is retried, and for how long.

A result the database refuses (here: a NUL character, which PostgreSQL text cannot hold) would be
refused again, so it is not retried for minutes: the thread gets the result at once, marked not
recorded, and nobody is told to wait for a database that is up.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.actions.base import ActionContext, ActionOutcome, StepAction
from bot.config import Action
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.clock import FakeClock
from tests.support.incidents import declare, incident_bot, incident_config, text_of


class Unstorable:
    """An action whose summary PostgreSQL refuses to store (a NUL character from a target's answer)."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, action: Action) -> StepAction:
        return self

    def describe(self) -> str:
        return "POST https://deploy.example.com/rollback"

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        return ActionOutcome(True, "would roll back")

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        self.runs += 1
        return ActionOutcome(True, "rolled back to v41\x00")


async def test_a_result_the_database_refuses_is_not_retried_for_minutes(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    action = Unstorable()
    async with incident_bot(
        database_url=postgres_url,
        config_dir=incident_config(tmp_path),
        fake=fake_slack,
        clock=clock,
        build_action=action,
    ) as ibot:
        bot = ibot.bot
        channel = await declare(bot)
        mark = bot.fake.mark()
        await bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=channel)
        # under the minutes-long record policy a retried permanent error would keep this waiting
        done = await bot.fake.wait_for(
            "chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark, timeout=10
        )
        assert "*Not recorded*" in text_of(done)
        posted = [text_of(c) for c in bot.fake.calls_to("chat.postMessage", after=mark)]
        assert not any("not taking the result yet" in t for t in posted), posted
        assert action.runs == 1
        loud = [r for r in caplog.records if "STEP RESULT NOT RECORDED" in r.getMessage()]
        assert len(loud) == 1 and "DataError" in loud[0].getMessage()


def test_only_a_policy_that_records_an_outcome_may_retry_many_times() -> None:
    from bot.resilience import MAX_ATTEMPTS, RECORD_OUTCOME, CallPolicy

    assert MAX_ATTEMPTS <= 10
    with pytest.raises(ValueError, match="between 1 and 10"):
        CallPolicy(attempts=11)
    assert RECORD_OUTCOME.attempts > MAX_ATTEMPTS and RECORD_OUTCOME.records_outcome
