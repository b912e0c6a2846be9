"""The ticker claims, audits and enqueues a batch of notices in one transaction: a database failure
anywhere inside it loses nothing and doubles nothing; the next tick announces the whole batch once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.db.engine import Database
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot, write_config
from tests.support.clock import FakeClock

BASE = """\
timezone: Europe/Berlin
channels: {deploys: C0DEPLOYS}
freeze:
  environments: [production]
  reminders: [3s]
"""
WINDOWS = 30


@contextmanager
def failing_once(db: Database, statement_prefix: str) -> Iterator[list[str]]:
    """The next statement starting with `statement_prefix` fails as a lost connection would."""
    fired: list[str] = []

    def fail(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if not fired and statement.lstrip().upper().startswith(statement_prefix):
            fired.append(statement)
            raise OperationalError(statement, params, ConnectionResetError("injected: connection lost"))

    event.listen(db.engine.sync_engine, "before_cursor_execute", fail)
    try:
        yield fired
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", fail)


@pytest.mark.parametrize(
    "prefix",
    ["INSERT INTO FREEZE_ANNOUNCEMENT", "INSERT INTO AUDIT_ENTRY", "UPDATE AUDIT_HEAD SET HASH", "INSERT INTO OUTBOX"],
)
async def test_a_database_failure_mid_batch_loses_no_notice_and_posts_none_twice(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, prefix: str
) -> None:
    clock = FakeClock()
    async with running_bot(
        database_url=database_url, config_dir=write_config(tmp_path / "c", base=BASE), fake=fake_slack, clock=clock
    ) as bot:
        start = clock.now() + timedelta(seconds=10)
        for i in range(WINDOWS):
            await bot.runtime.freezes.create(
                starts_at=start,
                ends_at=start + timedelta(seconds=5),
                environment=None,
                reason=f"Window {i}",
                actor="U0CAROL",
            )
        await bot.runtime.freezes.tick()  # the creations' own announcements
        await bot.runtime.outbox.settle()
        mark = fake_slack.mark()

        clock.set(start - timedelta(seconds=3))  # every window's reminder falls due at once
        with failing_once(bot.runtime.db, prefix) as fired:
            with pytest.raises(OperationalError):
                await bot.runtime.freezes.tick()
        assert fired, f"no statement starting with {prefix} ran in the batch"
        assert fake_slack.calls_to("chat.postMessage", after=mark) == []  # nothing committed, nothing posted

        # The whole batch again, once: by this tick or by the bot's own scheduler, whichever comes first.
        await bot.runtime.freezes.tick()
        await fake_slack.wait_for(
            "chat.postMessage",
            lambda _: sum(c.ok for c in fake_slack.calls_to("chat.postMessage", after=mark)) >= WINDOWS,
            after=mark,
            timeout=15,
        )
        await bot.runtime.outbox.settle()
        assert await bot.runtime.freezes.tick() == 0

        posted = Counter(str(c.args.get("text")) for c in fake_slack.calls_to("chat.postMessage", after=mark) if c.ok)
        assert posted == {f"Freeze #{i} on production starts in 3s: Window {i - 1}": 1 for i in range(1, WINDOWS + 1)}
        announced = [e.details["key"] async for e in bot.runtime.audit.entries() if e.action == "freeze.announced"]
        assert len(announced) == len(set(announced)) == WINDOWS  # one audit entry per notice
        result = await bot.runtime.audit.verify()
        assert result.ok, result.reason
