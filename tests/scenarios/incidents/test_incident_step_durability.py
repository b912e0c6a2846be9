"""A step's result is recorded even when the database refuses connections while the action runs.

A real `http` step against a slow local hook; a TCP proxy between the bot and the real PostgreSQL
starts refusing connections the moment the hook receives the request, and stays refusing for
longer than the action takes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.actions import build_action
from bot.db import migrate
from bot.resilience import RECORD_OUTCOME, CallPolicy
from bot.runtime import Overrides
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot
from tests.support.clock import FakeClock
from tests.support.fake_actions import FakeActions
from tests.support.fake_hook import FakeHook
from tests.support.incidents import (
    FakeFreezes,
    IncidentBot,
    add_sre_group,
    declare,
    fakes,
    http_rollback_playbook,
    incident_config,
    text_of,
)
from tests.support.tcp_proxy import FaultyProxy, faulty_proxy

ACTION_SECONDS = 1.0  # how long the hook takes to answer
OUTAGE_SECONDS = 3.0  # how long the database keeps refusing after that
# A record window shorter than the outage, so the result goes to the background retrier.
SHORT_RECORD_WINDOW = Overrides(
    record_outcome=CallPolicy(timeout=2.0, attempts=5, backoff=0.1, max_backoff=0.2, deadline=1.0),
    keep_trying_every=0.2,
)


@dataclass
class Stand:
    ibot: IncidentBot
    hook: FakeHook
    proxy: FaultyProxy
    channel: str


@asynccontextmanager
async def stand(
    postgres_url: str,
    tmp_path: Path,
    fake_slack: FakeSlack,
    clock: FakeClock,
    records: Overrides | None = None,
    **settings: Any,
) -> AsyncIterator[Stand]:
    """`records`: how the bot retries writing a step's result (its `record_outcome`, `keep_trying_every`)."""
    records = records or Overrides()
    hook = FakeHook()
    async with hook.serve() as hook_url, faulty_proxy(postgres_url) as proxy:
        playbook = http_rollback_playbook(hook_url)
        migrate.upgrade(postgres_url)  # synchronous: not through the proxy, which runs on this loop
        freezes = FakeFreezes()
        async with running_bot(
            database_url=proxy.url_for(postgres_url),
            config_dir=incident_config(tmp_path, playbook),
            fake=fake_slack,
            clock=clock,
            migrate_first=False,
            overrides=replace(
                fakes(build_action, freezes),
                record_outcome=records.record_outcome,
                keep_trying_every=records.keep_trying_every,
            ),
            **settings,
        ) as bot:  # the real http action
            ibot = IncidentBot(bot, FakeActions(), freezes)
            add_sre_group(fake_slack)
            channel = await declare(bot)
            yield Stand(ibot, hook, proxy, channel)


def outage_when_the_rollback_lands(proxy: FaultyProxy) -> Any:
    """The hook's answer: the database goes away as the request reaches production; the hook
    answers after ACTION_SECONDS (a slow target)."""

    async def answer(request: Request, body: Any) -> Response:
        proxy.mode = "refuse"
        await asyncio.sleep(ACTION_SECONDS)
        return JSONResponse({"ok": True, "rolled_back_to": "v41"})

    return answer


async def test_the_result_of_a_step_lands_after_the_database_refused_connections_for_longer_than_the_action(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with stand(postgres_url, tmp_path, fake_slack, clock) as s:
        bot, fake = s.ibot.bot, s.ibot.fake
        s.hook.answer_with = outage_when_the_rollback_lands(s.proxy)
        fresh = fake.mark()
        await bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=s.channel)
        # the action ended; the database still refuses: the thread hears the result is held, not lost
        waiting = await fake.wait_for(
            "chat.postMessage", lambda c: "not taking the result yet" in text_of(c), timeout=15, after=fresh
        )
        assert "Roll back last deploy succeeded" in text_of(waiting)
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage goes on (this is the fault, not a wait)
        assert s.proxy.mode == "refuse"
        s.proxy.mode = "pass"

        done = await fake.wait_for(
            "chat.postMessage", lambda c: "* succeeded after" in text_of(c), timeout=20, after=fresh
        )
        assert "recorded once the database was back" in text_of(done)
        await fake.wait_for("chat.update", lambda c: "✅ succeeded" in blocks_text(c.args["blocks"]), after=fresh)
        incident = await bot.runtime.incidents.get(1)
        assert incident is not None
        [rollback] = (await bot.runtime.incidents.playbook_view(incident)).steps
        assert (rollback.state.status, rollback.state.attempt) == ("succeeded", 1)
        entries = [e for e in await bot.runtime.audit.latest(20) if e.action.startswith("incident.step.")]
        assert [(e.action, e.details["attempt"]) for e in entries] == [
            ("incident.step.started", 1),
            ("incident.step.succeeded", 1),
        ]
        assert entries[1].details["recorded"] is True
        assert (await bot.runtime.audit.verify()).ok
    assert len(s.hook.requests) == 1  # the target got exactly one rollback


def stranded_when_the_rollback_lands(proxy: FaultyProxy) -> Any:
    """The hook's answer: a failover without resets as the request reaches production — every
    established database connection (the pool's) goes silent; new connections pass."""

    async def answer(request: Request, body: Any) -> Response:
        proxy.mode = "strand"
        await asyncio.sleep(ACTION_SECONDS)
        return JSONResponse({"ok": True, "rolled_back_to": "v41"})

    return answer


@pytest.mark.parametrize("database_timeout", [1.0, 30.0], ids=["database-bound-first", "record-timeout-first"])
async def test_the_result_of_a_step_lands_after_the_pools_connections_went_silent(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, database_timeout: float
) -> None:
    # the write's own timeout: shorter than the database bound in the second case
    records = Overrides(record_outcome=replace(RECORD_OUTCOME, timeout=2.0, deadline=60.0))
    async with stand(postgres_url, tmp_path, fake_slack, clock, records, database_timeout=database_timeout) as s:
        bot, fake = s.ibot.bot, s.ibot.fake
        s.hook.answer_with = stranded_when_the_rollback_lands(s.proxy)
        mark = fake.mark()
        started = time.monotonic()
        await bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=s.channel)
        done = await fake.wait_for(
            "chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark, timeout=30
        )
        took = time.monotonic() - started
        assert "Not recorded" not in text_of(done)
        s.proxy.mode = "pass"
        incident = await bot.runtime.incidents.get(1)
        assert incident is not None
        [rollback] = (await bot.runtime.incidents.playbook_view(incident)).steps
        assert (rollback.state.status, rollback.state.attempt) == ("succeeded", 1)
        entries = [e for e in await bot.runtime.audit.latest(20) if e.action.startswith("incident.step.")]
        assert [(e.action, e.details["attempt"]) for e in entries] == [
            ("incident.step.started", 1),
            ("incident.step.succeeded", 1),
        ]
        # one bounded wait on a silent connection, without waiting for the cut query's cleanup (~5 s in psycopg)
        assert took < ACTION_SECONDS + min(database_timeout, 2.0) + 4.0, took
    assert len(s.hook.requests) == 1


async def test_a_result_the_database_never_takes_is_kept_until_guardrail_stops_then_logged_and_interrupted(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, caplog: Any
) -> None:
    async with stand(postgres_url, tmp_path, fake_slack, clock, SHORT_RECORD_WINDOW) as s:
        bot, fake = s.ibot.bot, s.ibot.fake
        s.hook.answer_with = outage_when_the_rollback_lands(s.proxy)
        fresh = fake.mark()
        await bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=s.channel)
        kept = await fake.wait_for(
            "chat.postMessage", lambda c: "* succeeded after" in text_of(c), timeout=15, after=fresh
        )
        assert "*Not recorded yet*" in text_of(kept) and "check the target before running it again" in text_of(kept)
        assert not [r for r in caplog.records if "STEP RESULT NOT RECORDED" in r.getMessage()]  # still held
        await asyncio.sleep(1.0)  # the outage outlasts several background tries (the fault, not a wait)
    # guardrail stopped with the result still in memory: one loud line says what production got
    loud = [r for r in caplog.records if "STEP RESULT NOT RECORDED" in r.getMessage()]
    assert len(loud) == 1 and loud[0].levelname == "ERROR" and "\n" not in loud[0].getMessage()
    assert "rollback of incident 1 (run 1, by U0CAROL) succeeded" in loud[0].getMessage()

    async with running_bot(
        database_url=postgres_url, config_dir=tmp_path / "config", fake=fake_slack, clock=clock, migrate_first=False
    ) as later:
        fresh = fake_slack.mark()
        clock.advance(later.runtime.incidents.leases.lease + timedelta(seconds=1))
        await later.runtime.incidents.sweep_interrupted()
        await fake_slack.wait_for("chat.postMessage", lambda c: "was *interrupted*" in text_of(c), after=fresh)
        entries = [e.action for e in await later.runtime.audit.latest(20) if e.action.startswith("incident.step.")]
        assert entries == ["incident.step.started", "incident.step.interrupted"]


@asynccontextmanager
async def two_replicas(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, records_a: Overrides | None = None
) -> AsyncIterator[tuple[IncidentBot, IncidentBot, FaultyProxy]]:
    """Replica A reaches PostgreSQL through a proxy the test can cut (and retries writing a step's
    result as `records_a` says); replica B directly."""
    records_a = records_a or Overrides()
    config = incident_config(tmp_path)
    actions = FakeActions()
    freezes_a, freezes_b = FakeFreezes(), FakeFreezes()
    migrate.upgrade(postgres_url)
    async with (
        faulty_proxy(postgres_url) as proxy,
        running_bot(
            database_url=proxy.url_for(postgres_url),
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            migrate_first=False,
            overrides=replace(
                fakes(actions, freezes_a),
                record_outcome=records_a.record_outcome,
                keep_trying_every=records_a.keep_trying_every,
            ),
        ) as a,
        running_bot(
            database_url=postgres_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            migrate_first=False,
            overrides=fakes(actions, freezes_b),
        ) as b,
    ):
        one, two = IncidentBot(a, actions, freezes_a), IncidentBot(b, actions, freezes_b)
        add_sre_group(fake_slack)
        yield one, two, proxy


async def cut_off_mid_step(
    one: IncidentBot, two: IncidentBot, proxy: FaultyProxy, clock: FakeClock, channel: str
) -> asyncio.Event:
    """Replica A runs `verify` and loses the database; its lease runs out and B marks the run interrupted."""
    gate = one.actions.hang("verify")
    await one.bot.slack.block_action("incident.step.run:verify", user_id="U0CAROL", channel_id=channel)
    await one.actions.started.wait()
    proxy.mode = "refuse"
    fresh = two.fake.mark()
    clock.advance(two.bot.runtime.incidents.leases.lease + timedelta(seconds=1))
    await two.bot.runtime.incidents.sweep_interrupted()
    told = await two.fake.wait_for("chat.postMessage", lambda c: "was *interrupted*" in text_of(c), after=fresh)
    # A is alive and its action still runs: the word is "went silent", not "stopped"
    assert "may still be running or may already have reached its target" in text_of(told)
    assert "guardrail stopped" not in text_of(told)
    incident = await two.bot.runtime.incidents.get(1)
    assert incident is not None
    view = await two.bot.runtime.incidents.playbook_view(incident)
    summary = next(v.state.summary for v in view.steps if v.step.id == "verify") or ""
    assert "may still be running" in summary and "guardrail stopped" not in summary
    del one.actions.scripts["verify"]  # a later run answers at once; the first still waits on `gate`
    return gate


async def test_a_result_that_lands_after_its_run_was_shown_interrupted_replaces_interrupted(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with two_replicas(postgres_url, tmp_path, fake_slack, clock) as (one, two, proxy):
        channel = await declare(one.bot)
        gate = await cut_off_mid_step(one, two, proxy, clock, channel)
        fresh = fake_slack.mark()
        gate.set()  # A's action ends while A still cannot reach the database
        await fake_slack.wait_for(
            "chat.postMessage", lambda c: "not taking the result yet" in text_of(c), timeout=15, after=fresh
        )
        proxy.mode = "pass"
        done = await fake_slack.wait_for(
            "chat.postMessage", lambda c: "* succeeded after" in text_of(c), timeout=20, after=fresh
        )
        assert "recorded once the database was back" in text_of(done)
        incident = await two.bot.runtime.incidents.get(1)
        assert incident is not None
        view = await two.bot.runtime.incidents.playbook_view(incident)
        state = next(v.state for v in view.steps if v.step.id == "verify")
        assert (state.status, state.attempt) == ("succeeded", 1)
        steps = [e.action for e in await two.bot.runtime.audit.latest(20) if e.action.startswith("incident.step.")]
        assert steps == ["incident.step.started", "incident.step.interrupted", "incident.step.succeeded"]
        assert one.actions.runs["verify"] == 1


async def test_a_late_result_after_an_interrupted_run_was_run_again_is_posted_but_not_the_steps_state(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    async with two_replicas(postgres_url, tmp_path, fake_slack, clock) as (one, two, proxy):
        channel = await declare(one.bot)
        gate = await cut_off_mid_step(one, two, proxy, clock, channel)
        await two.bot.slack.block_action("incident.step.run:verify", user_id="U0DAVE", channel_id=channel)
        ask = await fake_slack.wait_for_response(
            lambda r: "was interrupted" in str(r.text), after=two.bot.slack.last_action
        )
        button = ask.body["blocks"][-1]["elements"][0]
        fresh = fake_slack.mark()
        await two.bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
        await fake_slack.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
        assert two.actions.runs["verify"] == 2

        proxy.mode = "pass"
        gate.set()  # run 1 comes back at last: posted as late, never over run 2
        late = await fake_slack.wait_for("chat.postMessage", lambda c: "(run 1)" in text_of(c), timeout=20, after=fresh)
        assert "late: a newer run had started" in text_of(late)
        incident = await two.bot.runtime.incidents.get(1)
        assert incident is not None
        view = await two.bot.runtime.incidents.playbook_view(incident)
        state = next(v.state for v in view.steps if v.step.id == "verify")
        assert (state.status, state.attempt, state.actor) == ("succeeded", 2, "U0DAVE")
        finished = [
            (e.details["attempt"], e.details["recorded"])
            for e in await two.bot.runtime.audit.latest(20)
            if e.action == "incident.step.succeeded"
        ]
        assert sorted(finished) == [(1, False), (2, True)]


async def test_a_result_kept_past_the_record_window_lands_once_the_database_is_back_and_replaces_interrupted(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, caplog: Any
) -> None:
    async with two_replicas(postgres_url, tmp_path, fake_slack, clock, SHORT_RECORD_WINDOW) as (one, two, proxy):
        channel = await declare(one.bot)
        gate = await cut_off_mid_step(one, two, proxy, clock, channel)
        mark = fake_slack.mark()
        gate.set()  # A's action ends; A cannot reach the database for longer than its record window
        kept = await fake_slack.wait_for(
            "chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark, timeout=15
        )
        assert "*Not recorded yet*" in text_of(kept)
        await asyncio.sleep(1.0)  # the outage outlasts several background tries (the fault, not a wait)
        proxy.mode = "pass"
        done = await fake_slack.wait_for(
            "chat.postMessage", lambda c: "recorded once the database was back" in text_of(c), after=mark, timeout=20
        )
        assert "Verify database and queue* succeeded" in text_of(done) and "(run 1)" in text_of(done)
        incident = await two.bot.runtime.incidents.get(1)
        assert incident is not None
        view = await two.bot.runtime.incidents.playbook_view(incident)
        state = next(v.state for v in view.steps if v.step.id == "verify")
        assert (state.status, state.attempt) == ("succeeded", 1)
        steps_audit = [
            e.action for e in await two.bot.runtime.audit.latest(20) if e.action.startswith("incident.step.")
        ]
        assert steps_audit == ["incident.step.started", "incident.step.interrupted", "incident.step.succeeded"]
        assert one.actions.runs["verify"] == 1
    assert not [r for r in caplog.records if "STEP RESULT NOT RECORDED" in r.getMessage()]
