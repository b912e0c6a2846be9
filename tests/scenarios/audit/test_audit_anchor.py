"""Anchors: the audit log's head posted to `audit.anchor_channel`, where a database writer cannot
reach it, every `anchor_every` entries or `anchor_interval`; and what the posted anchor catches."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.db.audit import Anchor
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.scheduler import build_scheduler
from bot.services.audit import UNSIGNED_WARNING
from tests.support.bot import BotHarness, running_bot, write_config
from tests.support.clock import FakeClock

KEY = "k3y-for-the-audit-log-0123456789"
ANCHORS = """\
audit:
  anchor_channel: C0AUDIT
  anchor_every: 3
  anchor_interval: 1h
"""


def posted_anchors(bot: BotHarness) -> list[str]:
    """`<seq>:<hash>` of every anchor the channel received, as a person would copy it."""
    found = []
    for call in bot.fake.calls_to("chat.postMessage"):
        if call.args.get("channel") == "C0AUDIT" and call.response.get("ok"):
            found += re.findall(r"--anchor ([0-9]+:[0-9a-f]{64})", str(call.args.get("blocks")))
    return found


async def write(bot: BotHarness, count: int) -> None:
    for i in range(count):
        await bot.runtime.audit.record(actor="U0CAROL", action="note", subject=f"n{i}")


async def test_the_head_is_posted_every_n_entries_or_interval_and_catches_a_rewound_tail(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    config = write_config(tmp_path / "config", ANCHORS)
    async with running_bot(
        database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, guardrail_audit_key=KEY
    ) as bot:
        audit = bot.runtime.audit
        assert build_scheduler(bot.runtime).get_job("audit.anchor") is not None
        # entry #1 is config.loaded, written at start: the first tick anchors it at once
        first = await audit.anchor_tick()
        assert first is not None and first.seq == 1
        assert await audit.anchor_tick() is None  # nothing new
        await write(bot, 2)
        assert await audit.anchor_tick() is None  # 2 entries < anchor_every
        await write(bot, 1)
        assert (await audit.anchor_tick()) == Anchor(4, posted_anchors(bot)[-1].split(":")[1])
        await write(bot, 1)
        clock.advance(timedelta(minutes=59))
        assert await audit.anchor_tick() is None
        clock.advance(timedelta(minutes=1))  # anchor_interval passed, one entry written
        assert (await audit.anchor_tick() or Anchor(0, "")).seq == 5
        assert [a.split(":")[0] for a in posted_anchors(bot)] == ["1", "4", "5"]

        # Slack fails: the claim stays, and is posted by a tick a minute later (not twice meanwhile)
        await write(bot, 3)
        bot.fake.fail("chat.postMessage", "internal_error")
        assert await audit.anchor_tick() is None
        assert await audit.anchor_tick() is None
        clock.advance(timedelta(seconds=61))
        assert (await audit.anchor_tick() or Anchor(0, "")).seq == 8
        assert [a.split(":")[0] for a in posted_anchors(bot)] == ["1", "4", "5", "8"]

        # A database writer deletes #6 to #8 and rewinds the head: only the posted anchor knows
        async with bot.runtime.db.unit_of_work() as session:
            await session.execute(text("DELETE FROM audit_entry WHERE seq > 5"))
            await session.execute(
                text("UPDATE audit_head SET seq = 5, hash = (SELECT hash FROM audit_entry WHERE seq = 5) WHERE id = 1")
            )
        assert (await audit.verify()).ok
        result = await audit.verify([Anchor.parse(a) for a in posted_anchors(bot)])
        assert not result.ok and "anchor posted outside the database says entry #8 existed" in (result.reason or "")


async def test_a_missing_key_is_warned_about_once_at_start(
    database_url: str, config_dir: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_bot(database_url=database_url, config_dir=config_dir, fake=fake_slack):
        pass
    assert [r.getMessage() for r in caplog.records].count(UNSIGNED_WARNING) == 1
    caplog.clear()
    async with running_bot(
        database_url=database_url, config_dir=config_dir, fake=fake_slack, guardrail_audit_key=KEY
    ) as bot:
        assert bot.runtime.audit.signed
    assert UNSIGNED_WARNING not in [r.getMessage() for r in caplog.records]


def warnings_posted(bot: BotHarness) -> list[str]:
    return [
        str(call.args.get("text"))
        for call in bot.fake.calls_to("chat.postMessage")
        if call.args.get("channel") == "C0AUDIT" and "Audit log warning" in str(call.args.get("text"))
    ]


async def test_a_head_rewound_behind_the_last_anchor_or_a_rewritten_anchored_entry_is_reported_once(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path / "config", ANCHORS)
    async with running_bot(
        database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, guardrail_audit_key=KEY
    ) as bot:
        audit = bot.runtime.audit
        await write(bot, 4)
        assert (await audit.anchor_tick() or Anchor(0, "")).seq == 5
        caplog.set_level(logging.ERROR)

        # A database writer deletes #4 and #5 and rewinds the head to #3: the anchor at #5 catches it.
        async with bot.runtime.db.unit_of_work() as session:
            await session.execute(text("DELETE FROM audit_entry WHERE seq > 3"))
            await session.execute(
                text("UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_entry WHERE seq = 3) WHERE id = 1")
            )
        rewound = "audit log head #3 is behind the last anchor #5: the log was rewound"
        assert await audit.anchor_tick() is None
        assert await audit.anchor_tick() is None  # once, not every tick
        assert [w for w in warnings_posted(bot) if rewound in w] == [f"Audit log warning: {rewound}"]
        assert [r.getMessage() for r in caplog.records if rewound in r.getMessage()] == [
            f"{rewound} (check with `guardrail audit verify --anchor …`)"
        ]
        assert [a.split(":")[0] for a in posted_anchors(bot)] == ["5"]  # nothing anchored over it

        # Later entries bring the head past #5 again, but #5 is not the anchored entry: still reported.
        await write(bot, 5)
        assert await audit.anchor_tick() is None
        assert any(
            "entry #5 no longer has the hash posted in its anchor" in w and "rewritten" in w
            for w in warnings_posted(bot)
        )
        assert [a.split(":")[0] for a in posted_anchors(bot)] == ["5"]
