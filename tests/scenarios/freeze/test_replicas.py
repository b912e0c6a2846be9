"""Two replicas on one PostgreSQL, ticking at the same moments: every announcement is posted once.

Each replica is a whole runtime with its own connection pool, as a `guardrail serve` process has;
both tick concurrently at every step of one injected clock, so the test is deterministic in time
and takes seconds, while the claims still race on the database exactly as two processes' would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from bot.config import load_config
from bot.db.engine import Database
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.audit import AuditLog
from bot.services.freeze.service import FreezeService
from tests.support.bot import running_bot, write_config
from tests.support.clock import FakeClock

BASE = """\
timezone: Europe/Berlin
channels: {deploys: C0DEPLOYS}
freeze:
  environments: [production, staging]
  reminders: [3s]
"""
WINDOWS = 60


async def test_two_replicas_announce_each_reminder_start_and_end_once(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    config = write_config(tmp_path / "config", base=BASE)
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                running_bot(
                    database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock, migrate_first=first
                )
            )
            for first in (True, False)
        ]
        db = Database(postgres_url)
        stack.push_async_callback(db.dispose)
        loaded = load_config(config, {}).config
        # Created by a service without Slack: the replicas' outboxes post those announcements too.
        freezes = FreezeService(db, clock, loaded)
        start = clock.now() + timedelta(seconds=5)
        for i in range(WINDOWS):
            await freezes.create(
                starts_at=start,
                ends_at=start + timedelta(seconds=2),
                environment=None,
                reason=f"Window {i}",
                actor="U0CAROL",
            )
        # One-second steps past the last end, both replicas ticking at once (twice per step, as
        # their schedulers would when a tick overlaps the next).
        for _ in range(9):
            clock.advance(timedelta(seconds=1))
            for _ in range(2):
                await asyncio.gather(*(r.runtime.freezes.tick() for r in replicas))
                await asyncio.gather(*(r.runtime.outbox.dispatch() for r in replicas))
        await asyncio.gather(*(r.runtime.outbox.settle() for r in replicas))
        # Nothing may follow: every window's last event is claimed, so a third replica ticking now
        # finds nothing left to post.
        third = FreezeService(db, clock, loaded)
        assert [await third.tick() for _ in range(5)] == [0] * 5  # nothing enqueued
        # Both replicas appended their batches' audit entries to one chain: each notice once, nothing forked.
        audit = AuditLog(db, clock)
        announced = Counter([e.details["key"] async for e in audit.entries() if e.action == "freeze.announced"])
        assert len(announced) == 3 * WINDOWS and set(announced.values()) == {1}
        verified = await audit.verify()
        assert verified.ok, verified.reason

    posted = Counter(str(c.args.get("text")) for c in fake_slack.calls_to("chat.postMessage") if c.ok)
    assert set(posted.values()) == {1}, posted
    assert {f"Freeze #{i} on production has ended" for i in range(1, WINDOWS + 1)} <= set(posted)
    kinds = Counter(
        next((k for k in ("starts in", "has started", "has ended") if k in text), "created") for text in posted
    )
    assert kinds == {"created": WINDOWS, "starts in": WINDOWS, "has started": WINDOWS, "has ended": WINDOWS}
