"""Two bot processes on one PostgreSQL receive the same click: the step runs once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Mark, ResponsePost
from tests.support.bot import running_bot
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions
from tests.support.incidents import (
    FakeFreezes,
    add_sre_group,
    declare,
    declared,
    fakes,
    incident_config,
    text_of,
    value_of,
)


def resolved_twice(fake: FakeSlack, mark: Mark) -> Callable[[ResponsePost], bool]:
    """Both replicas have answered a "resolve" since `mark`."""
    return lambda _: sum(1 for x in fake.responses_after(mark) if "resolved" in str(x.text)) >= 2


async def test_the_same_click_at_two_replicas_runs_the_step_once(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    config = incident_config(tmp_path)
    actions = FakeActions()  # shared: counts executions across both processes
    async with (
        running_bot(
            database_url=postgres_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            overrides=fakes(actions, FakeFreezes()),
        ) as one,
        running_bot(
            database_url=postgres_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            overrides=fakes(actions, FakeFreezes()),
        ) as two,
    ):
        add_sre_group(fake_slack)
        channel = await declare(one)
        rounds = 6
        for n in range(rounds):
            value = value_of(one, channel, "incident.step.run:verify")
            mark = fake_slack.mark()  # two clients act: wait for what came after both, not after the last
            await asyncio.gather(
                one.slack.block_action("incident.step.run:verify", value, user_id="U0CAROL", channel_id=channel),
                two.slack.block_action("incident.step.run:verify", value, user_id="U0CAROL", channel_id=channel),
            )
            await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
            await fake_slack.wait_for_response(lambda r: "⛔" in str(r.text), after=mark)
            assert actions.runs["verify"] == n + 1
        started = [e for e in await one.runtime.audit.latest(100) if e.action == "incident.step.started"]
        assert [e.details["attempt"] for e in started] == list(range(1, rounds + 1))
        verified = await one.runtime.audit.verify()
        assert verified.ok


async def test_two_replicas_resolving_at_once_resolve_the_incident_once(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    config = incident_config(tmp_path)
    async with (
        running_bot(
            database_url=postgres_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            overrides=fakes(FakeActions(), FakeFreezes()),
        ) as one,
        running_bot(
            database_url=postgres_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            overrides=fakes(FakeActions(), FakeFreezes()),
        ) as two,
    ):
        add_sre_group(fake_slack)
        rounds = 4
        for n in range(rounds):
            mark = fake_slack.mark()
            channel = await declare(one, f"Checkout fails {n} sev2")
            await fake_slack.wait_for_response(declared(n + 1), after=mark)
            mark = fake_slack.mark()  # two clients act: wait for what came after both, not after the last
            await asyncio.gather(
                one.slack.slash("/incident", "resolve rolled back", user_id="U0CAROL", channel_id=channel),
                two.slack.slash("/incident", "resolve rolled back", user_id="U0DAVE", channel_id=channel),
            )
            await fake_slack.wait_for_response(resolved_twice(fake_slack, mark), after=mark)
            replies = [str(r.text) for r in fake_slack.responses_after(mark)]
            assert sum("resolved after" in t for t in replies) == 1, replies
            assert sum("was already resolved" in t for t in replies) == 1, replies
        resolved = [e for e in await one.runtime.audit.latest(100) if e.action == "incident.resolved"]
        assert len(resolved) == rounds
        assert (await one.runtime.audit.verify()).ok
