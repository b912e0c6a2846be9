"""`/audit [n]` end to end: a user types it, only they see the entries."""

from __future__ import annotations

from bot.sandbox.standin.blocks import blocks_text
from tests.support.bot import BotHarness


async def test_audit_shows_the_last_entries_to_the_caller_only(bot: BotHarness) -> None:
    for i in range(12):
        await bot.runtime.audit.record(
            actor="U0CAROL", action="freeze.created", subject=f"window-{i}", details={"reason": f"Demo {i}"}
        )

    response = await bot.slack.slash("/audit", "3", user_id="U0ALICE")
    assert response.status_code == 200

    reply = await bot.fake.wait_for_response()
    assert reply.body["response_type"] == "ephemeral"
    text = blocks_text(reply.body["blocks"])
    assert "window-11" in text and "window-9" in text and "window-8" not in text
    assert "<@U0CAROL>" in text and "freeze.created" in text
    assert "<!date^" in text  # rendered in each reader's own time zone
    assert bot.fake.calls_to("chat.postMessage") == []  # nothing in the channel


async def test_audit_defaults_to_ten_entries(bot: BotHarness) -> None:
    for i in range(15):
        await bot.runtime.audit.record(actor="system", action="tick", subject=str(i))
    await bot.slack.slash("/audit")
    reply = await bot.fake.wait_for_response()
    assert reply.body["text"].startswith("Last 10 audit entries")


async def test_audit_with_a_bad_count_explains_the_usage(bot: BotHarness) -> None:
    for text in ("lots", "0", "²", "3 4", "-1"):
        bot.fake.reset()
        await bot.slack.slash("/audit", text)
        reply = await bot.fake.wait_for_response()
        assert "Usage: `/audit [n]`" in reply.body["text"], text


async def test_more_than_forty_shows_the_forty_newest(bot: BotHarness) -> None:
    for i in range(45):
        await bot.runtime.audit.record(actor="system", action="tick", subject=str(i))
    await bot.slack.slash("/audit", "100")
    reply = await bot.fake.wait_for_response()
    assert reply.body["text"].startswith("Last 40 audit entries")
