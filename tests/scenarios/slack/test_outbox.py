"""The outbox: every announcement that must happen is posted once Slack takes it, and only once.

Faults injected: Slack answering 500 / 429 to chat.postMessage, the database going away between a
post and its mark (the TCP proxy refusing PostgreSQL; a refusing unit of work on SQLite), and two
replicas dispatching the same outbox at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import load_config
from bot.db import outbox as table
from bot.db.engine import Database
from bot.runtime import Overrides, Runtime, build_runtime
from bot.sandbox.fakes.targets import TargetServer
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.outbox import LEASE, LONGEST_WAIT
from bot.slack.app import create_bolt_app
from tests.support import bot as support
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.databases import database_url_for
from tests.support.tcp_proxy import faulty_proxy

DEPLOYS = "C0DEPLOYS"
ALERTS = "C0ALERTS"


def posted_in(fake: FakeSlack, channel: str, text: str) -> list[str]:
    """What the channel now holds with `text` in it (one entry per message actually stored)."""
    return [str(m.get("text")) for m in fake.messages_in(channel) if text in str(m.get("text"))]


async def rows(runtime: Runtime) -> list[table.OutboxRecord]:
    async with runtime.db.reader() as session:
        return list(await table.all_rows(session))


async def retry_until_posted(runtime: Runtime, clock: FakeClock, *, rounds: int = 10) -> None:
    """Let the backoff pass and dispatch until nothing is pending (the bot's own tick may help)."""
    for _ in range(rounds):
        await runtime.outbox.settle()
        if all(r.status != table.PENDING for r in await rows(runtime)):
            return
        clock.advance(LONGEST_WAIT)
        await runtime.outbox.dispatch()
    raise AssertionError(f"still pending: {[(r.id, r.kind, r.attempts, r.last_error) for r in await rows(runtime)]}")


@pytest.mark.parametrize("fault", ["http_500", "http_429"])
async def test_a_freeze_created_while_slack_fails_is_announced_once_when_slack_is_back(
    bot: BotHarness, fault: str
) -> None:
    if fault == "http_500":
        bot.fake.fail("chat.postMessage", "internal_error", times=2, status=500)
    else:
        bot.fake.rate_limit("chat.postMessage", times=3, retry_after=1)  # slack_sdk honours two Retry-Afters
    await bot.slack.slash("/freeze", "for 1h Demo", user_id="U0CAROL")
    assert "Created freeze #1" in str((await bot.fake.wait_for_response()).body.get("text"))
    await bot.runtime.outbox.settle()
    assert posted_in(bot.fake, DEPLOYS, "Freeze #1") == []  # Slack is still failing

    await retry_until_posted(bot.runtime, bot.clock)
    assert posted_in(bot.fake, DEPLOYS, "Freeze #1") == ["Freeze #1 on production: Demo"]
    failed = [c for c in bot.fake.calls_to("chat.postMessage") if not c.ok]
    assert len(failed) == (2 if fault == "http_500" else 3)
    if fault == "http_500":  # a 500 may have posted: the retry looked in the channel first
        assert bot.fake.calls_to("conversations.history")
    [row] = await rows(bot.runtime)
    assert (row.kind, row.status, row.channel) == ("freeze.created", table.POSTED, DEPLOYS)
    assert row.ts == bot.fake.messages_in(DEPLOYS)[0]["ts"]


async def test_a_health_alert_whose_post_fails_is_retried(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, targets: TargetServer
) -> None:
    config = write_config(
        tmp_path / "config",
        f"""
        services:
          - name: checkout
            http: {{url: "{targets.set("/checkout")}"}}
            watch: true
            watch_interval: 30s
            watch_threshold: 2
    """,
    )
    async with running_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
        for _ in range(2):  # newly watched and up: recorded silently
            clock.advance(timedelta(seconds=30))
            await bot.runtime.health.watch_tick()
        targets.set("/checkout", status=503)
        fake_slack.fail("chat.postMessage", "fatal_error", times=1)
        for _ in range(2):
            clock.advance(timedelta(seconds=30))
            await bot.runtime.health.watch_tick()
        await bot.runtime.outbox.settle()
        assert posted_in(fake_slack, ALERTS, "checkout") == []
        assert [c.error for c in fake_slack.calls_to("chat.postMessage")] == ["fatal_error"]

        await retry_until_posted(bot.runtime, clock)
        assert posted_in(fake_slack, ALERTS, "checkout") == ["checkout is down (was up)"]
        # a refusal (not a 5xx) cannot have posted: the retry did not need to look
        assert fake_slack.calls_to("conversations.history") == []


class RefusingDatabase(Database):
    """SQLite's stand-in for a database that went away: units of work refuse while `down`."""

    down = False

    @asynccontextmanager
    async def unit_of_work(self, **bounds: Any) -> AsyncIterator[AsyncSession]:
        if self.down:
            raise ConnectionRefusedError("database unavailable (injected)")
        async with super().unit_of_work(**bounds) as session:
            yield session


@asynccontextmanager
async def replica(
    database_url: str, config_dir: Path, fake: FakeSlack, clock: FakeClock, db: Database | None = None
) -> AsyncIterator[Runtime]:
    """A guardrail runtime wired to Slack (courier included) but without a server or scheduler, so
    the test decides when the outbox dispatches."""
    settings = support.test_settings(database_url, config_dir, fake)
    # everything on the faulty database (when given), as one process would be
    runtime = build_runtime(settings, load_config(config_dir, {}), clock=clock, overrides=Overrides(db=db))
    create_bolt_app(runtime)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_database_blip_between_posting_and_marking_posts_the_notice_once(
    backend: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    from bot.db import migrate

    config = write_config(tmp_path / "config")
    with database_url_for(backend, tmp_path) as url:
        migrate.upgrade(url)
        async with AsyncExitStack() as stack:
            if backend == "postgres":
                proxy = await stack.enter_async_context(faulty_proxy(url))
                runtime = await stack.enter_async_context(replica(proxy.url_for(url), config, fake_slack, clock))

                def database(up: bool) -> None:
                    proxy.mode = "pass" if up else "refuse"
            else:
                refusing = RefusingDatabase(url)
                runtime = await stack.enter_async_context(replica(url, config, fake_slack, clock, refusing))

                def database(up: bool) -> None:
                    refusing.down = not up

            fake_slack.delay("chat.postMessage", 0.5)  # the post is in flight when the database goes
            now = clock.now()
            await runtime.freezes.create(
                starts_at=now, ends_at=now + timedelta(hours=1), environment=None, reason="Demo", actor="U0CAROL"
            )
            await fake_slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == DEPLOYS)
            database(up=False)
            await runtime.outbox.settle()  # Slack took it; marking it failed
            fake_slack.delay("chat.postMessage", 0)
            database(up=True)
            [row] = await rows(runtime)
            assert row.status == table.PENDING and row.maybe_posted

            clock.advance(LEASE + timedelta(seconds=1))  # the claim lapses: taken again, as after a crash
            await runtime.outbox.dispatch()
            assert posted_in(fake_slack, DEPLOYS, "Freeze #1") == ["Freeze #1 on production: Demo"]
            [row] = await rows(runtime)
            assert row.status == table.POSTED and row.ts == fake_slack.messages_in(DEPLOYS)[0]["ts"]
            assert len(fake_slack.calls_to("chat.postMessage")) == 1
            assert fake_slack.calls_to("conversations.history")


async def test_two_replicas_dispatching_the_same_outbox_post_each_message_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    from bot.db import migrate
    from bot.services.freeze.service import FreezeService

    config = write_config(tmp_path / "config")
    migrate.upgrade(database_url)
    windows = 40
    writer_db = Database(database_url)
    writer = FreezeService(writer_db, clock, load_config(config, {}).config)  # no outbox kick: rows wait
    now = clock.now()
    for i in range(windows):
        await writer.create(
            starts_at=now, ends_at=now + timedelta(hours=1), environment=None, reason=f"Window {i}", actor="U0CAROL"
        )
    await writer_db.dispose()
    fake_slack.delay("chat.postMessage", 0.1)
    async with AsyncExitStack() as stack:
        a, b = [await stack.enter_async_context(replica(database_url, config, fake_slack, clock)) for _ in range(2)]
        first_wave = asyncio.gather(a.outbox.dispatch(), b.outbox.dispatch())  # claiming at the same moment
        await fake_slack.wait_for("chat.postMessage")  # ... and while posts are in flight
        second_wave = await asyncio.gather(b.outbox.dispatch(), a.outbox.dispatch())
        delivered = [*await first_wave, *second_wave]
        assert sum(delivered) == windows
        counts: Counter[Any] = Counter(str(m["text"]) for m in fake_slack.messages_in(DEPLOYS))
        assert len(counts) == windows and set(counts.values()) == {1}, counts
        assert all(r.status == table.POSTED for r in await rows(a))


async def test_a_claim_an_earlier_version_left_unposted_is_announced_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    import json

    from bot.db import freeze as freeze_tables
    from bot.db import migrate
    from bot.services.freeze.service import FreezeService

    config = write_config(tmp_path / "config")
    migrate.upgrade(database_url)
    db = Database(database_url)
    now = clock.now()
    window = await FreezeService(db, clock, load_config(config, {}).config).create(
        starts_at=now, ends_at=now + timedelta(hours=1), environment=None, reason="Demo", actor="U0CAROL"
    )
    async with db.unit_of_work() as session:  # what the version before the outbox left: claimed, never posted
        await freeze_tables.claim_announcement(
            session,
            key=f"w{window.id}:start",
            at=now,
            notice=json.dumps(
                {
                    "kind": "started",
                    "at": now.isoformat(),
                    "window": window.id,
                    "exemption": None,
                    "until_start": None,
                    "due_at": now.isoformat(),
                }
            ),
        )
    await db.dispose()
    async with replica(database_url, config, fake_slack, clock) as runtime:
        await runtime.freezes.tick()
        await runtime.outbox.settle()
        await runtime.outbox.dispatch()
        for _ in range(2):
            clock.advance(timedelta(minutes=1))
            await runtime.freezes.tick()
            await runtime.outbox.settle()
    async with replica(database_url, config, fake_slack, clock) as runtime:  # a restart adopts nothing again
        await runtime.freezes.tick()
        await runtime.outbox.settle()
    assert posted_in(fake_slack, DEPLOYS, "has started") == ["Freeze #1 on production has started: Demo"]


async def test_a_message_slack_keeps_refusing_is_given_up_visibly_and_delivered_ones_are_forgotten(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.services.outbox import KEEP_DONE, MAX_AGE

    # 7 days (the longest freeze): the clock passes MAX_AGE below, and no window may end meanwhile, or
    # the bot's own tick would add "ended" notices (the last step, 7 days on, filters them out).
    await bot.slack.slash("/freeze", "for 7d Posted", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", lambda c: "Posted" in str(c.args.get("text")))
    bot.fake.fail("chat.postMessage", "channel_not_found", times=1000)
    await bot.slack.slash("/freeze", "for 7d Refused", user_id="U0CAROL")
    await bot.fake.wait_for_response(lambda r: "Created freeze #2" in str(r.body.get("text")))
    start = bot.clock.now()
    while bot.clock.now() - start <= MAX_AGE + LONGEST_WAIT:
        await bot.runtime.outbox.settle()
        bot.clock.advance(LONGEST_WAIT)
        await bot.runtime.outbox.dispatch()
    statuses = [(r.kind, r.status) for r in await rows(bot.runtime)]
    assert statuses == [("freeze.created", table.POSTED), ("freeze.created", table.FAILED)]
    [gave_up] = [e for e in await bot.runtime.audit.latest(10) if e.action == "outbox.gave_up"]
    assert gave_up.subject == "outbox#2" and "channel_not_found" in gave_up.details["error"]
    assert "gave up posting outbox message 2 (freeze.created)" in caplog.text

    bot.clock.advance(KEEP_DONE)
    await bot.runtime.outbox.dispatch()
    created = [(r.id, r.status) for r in await rows(bot.runtime) if r.kind == "freeze.created"]
    assert created == [(2, table.FAILED)]
