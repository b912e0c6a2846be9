"""`/freeze` end to end: a user types it, the bot answers them and announces in #deploys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.db.freeze import FreezeWindowRecord
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.recorder import Call
from tests.support.bot import BotHarness

DEPLOYS = "C0DEPLOYS"


def in_deploys(text: str):  # type: ignore[no-untyped-def]
    return lambda c: c.args.get("channel") == DEPLOYS and text in str(c.args.get("text"))


async def reply_text(bot: BotHarness) -> str:
    reply = await bot.fake.wait_for_response()
    assert reply.body["response_type"] == "ephemeral"
    return str(reply.body.get("text")) + "\n" + blocks_text(reply.body.get("blocks") or [])


async def test_creating_a_window_confirms_to_the_caller_and_announces_it(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "for 2h Demo Day", user_id="U0CAROL")
    assert "Created freeze #1 on production" in await reply_text(bot)

    call: Call = await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1"))
    text = blocks_text(call.args["blocks"])
    assert "<@U0CAROL> froze `production`: *Demo Day*" in text
    assert "<!date^" in text and "2026-11-30 10:00 CET" in text  # Slack date token with team-zone fallback
    entries = await bot.runtime.audit.latest(5)
    assert [e.action for e in entries if e.action.startswith("freeze.")] == ["freeze.created"]
    assert entries[-1].actor == "U0CAROL" and entries[-1].details["reason"] == "Demo Day"


async def test_list_shows_windows_overlaps_and_recurring_rules(bot: BotHarness) -> None:
    await bot.runtime.freezes.create(
        starts_at=bot.clock.now(),
        ends_at=bot.clock.now() + timedelta(hours=3),
        environment=None,
        reason="Demo Day",
        actor="U0CAROL",
    )
    await bot.runtime.freezes.create(
        starts_at=bot.clock.now() + timedelta(hours=1),
        ends_at=bot.clock.now() + timedelta(hours=5),
        environment="production",
        reason="Release",
        actor="U0DAVE",
    )
    await bot.slack.slash("/freeze", "")
    text = await reply_text(bot)
    assert "2 freeze windows active or upcoming" in text
    assert "*#1* `production`" in text and "*frozen now*" in text and "Demo Day — <@U0CAROL>" in text
    assert "*#2* `production`" in text and "upcoming" in text and "overlaps #1" in text


async def test_status_says_until_when(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "status")
    assert "production is not frozen" in await reply_text(bot)
    bot.fake.reset()
    await bot.slack.slash("/freeze", "for 2h on staging Load test", user_id="U0CAROL")
    await bot.fake.wait_for_response()
    bot.fake.reset()
    await bot.slack.slash("/freeze", "status staging")
    text = await reply_text(bot)
    assert "staging is frozen until 2026-11-30 12:00 CET" in text and "#1" in text


async def test_cancel_and_extend_are_announced_and_audited(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "in 1h for 2h Demo Day", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1"))
    await bot.slack.slash("/freeze", "extend #1 30m", user_id="U0DAVE")
    await bot.fake.wait_for("chat.postMessage", in_deploys("extended by 30m"))
    window = await bot.runtime.freezes.get(1)
    assert window.ends_at - window.starts_at == timedelta(hours=2, minutes=30)
    await bot.slack.slash("/freeze", "cancel #1", user_id="U0DAVE")
    await bot.fake.wait_for("chat.postMessage", in_deploys("was cancelled"))
    actions = [e.action for e in await bot.runtime.audit.latest(10) if e.action.startswith("freeze.")]
    assert actions == ["freeze.created", "freeze.extended", "freeze.cancelled"]


async def test_anyone_may_freeze_but_only_responders_cancel_or_extend(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "for 2h Demo Day", user_id="U0ALICE")  # not a responder
    assert "Created freeze #1" in await reply_text(bot)
    for text in ("cancel #1", "extend #1 1h"):
        bot.fake.reset()
        await bot.slack.slash("/freeze", text, user_id="U0ALICE")
        assert "Only responders (`access.responders`) can" in await reply_text(bot), text
    window = await bot.runtime.freezes.get(1)
    assert window.cancelled_at is None and window.ends_at - window.starts_at == timedelta(hours=2)
    denied = [e for e in await bot.runtime.audit.latest(10) if e.action == "freeze.exemption_denied"]
    assert [(e.actor, e.subject, e.details["attempted"]) for e in denied] == [
        ("U0ALICE", "freeze#1", "cancel a freeze window"),
        ("U0ALICE", "freeze#1", "extend a freeze window"),
    ]
    assert not [c for c in bot.fake.calls_to("chat.postMessage") if "cancelled" in str(c.args.get("text"))]
    bot.fake.reset()
    await bot.slack.slash("/freeze", "cancel #42", user_id="U0CAROL")
    assert "There is no freeze window #42" in await reply_text(bot)


async def test_extending_out_of_the_calendar_is_refused(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "for 2h Demo Day", user_id="U0CAROL")
    await bot.fake.wait_for_response()
    bot.fake.reset()
    await bot.slack.slash("/freeze", "extend #1 99999999d", user_id="U0CAROL")
    assert "`99999999d` (after `extend #N`) is out of range" in await reply_text(bot)


async def test_refusals_say_why(bot: BotHarness) -> None:
    cases = {
        "from 2026-11-29 10:00 for 1h Yesterday": "The window ends in the past.",
        "from 2026-12-01 10:00 until 2026-12-01 09:00 Backwards": "The window ends before it starts.",
        "for 8d Too long": "longer than `freeze.max_duration` (7d)",
        "for 1h on moon Nowhere": "Unknown environment `moon`: use one of production, staging.",
        "from noon for 1h Demo": "I did not understand `noon`",
        "frobnicate": "I don't know `/freeze frobnicate`",
        "for 99999999d Forever": "out of range",
        "from 9999-12-31 23:59 for 1d End of time": "out of range",
        "from 0001-01-01 00:00 for 1h Start of time": "out of range",
        "in 99999999d for 1h Later": "out of range",
        "cancel #²": "is not a window id",
        "extend #٣ 1h": "is not a window id",
        "cancel #9999999999": "is not a window id",
        "before 0001-01-01 01:00 lead 2h for 1h Early": "out of range",
        # A window near the end of the calendar could not be announced or listed.
        "from 9999-12-31 for 1d End of time": "The window starts more than a year ahead",
        "from 9999-12-31 22:00 UTC for 1h End of time": "The window starts more than a year ahead",
        "in 366d for 1h Next year": "The window starts more than a year ahead",
        # Zone folders are directories: zoneinfo raises IsADirectoryError for them.
        "from 2026-12-01 10:00 America/Argentina for 1h x": "`America/Argentina` is not a time zone I know",
        "from 2026-12-01 10:00 America/Indiana for 1h x": "`America/Indiana` is not a time zone I know",
        "from 2026-12-01 10:00 America/Kentucky/ for 1h x": "`America/Kentucky/` is not a time zone I know",
        # Only ASCII digits: full-width digits (U+FF10..U+FF19) are not digits here.
        "extend #1 \uff19m": "`\uff19m` (after `extend #N`) is not a duration",
        "for \uff12h Demo": "is not a duration",
        "from \uff11\uff14:00 for 1h Demo": "I did not understand",
        "from \uff12\uff10\uff12\uff16-12-01 for 1h Demo": "I did not understand",
    }
    for text, expected in cases.items():
        bot.fake.reset()
        await bot.slack.slash("/freeze", text)
        assert expected in await reply_text(bot), text
    assert bot.fake.calls_to("chat.postMessage") == []
    assert not [e for e in await bot.runtime.audit.latest(20) if e.action.startswith("freeze.")]


async def test_cancelling_twice_is_refused(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "for 1h Demo")
    await bot.fake.wait_for_response()
    await bot.slack.slash("/freeze", "cancel #1", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", in_deploys("was cancelled"))
    await bot.fake.wait_for_response(lambda r: "Cancelled freeze #1" in str(r.body.get("text")))
    bot.fake.reset()
    await bot.slack.slash("/freeze", "cancel #1", user_id="U0CAROL")
    assert "Window #1 was already cancelled." in await reply_text(bot)


async def test_the_new_form_creates_a_window_or_returns_field_errors(bot: BotHarness) -> None:
    response = await bot.slack.slash("/freeze", "new", user_id="U0CAROL")
    assert response.status_code == 200
    opened = await bot.fake.wait_for("views.open")
    view = opened.args["view"]
    assert view["callback_id"] == "freeze.new"
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"]}
    assert kinds == {
        "environment": "static_select",
        "start_date": "datepicker",
        "start_time": "timepicker",
        "end_date": "datepicker",
        "end_time": "timepicker",
        "reason": "plain_text_input",
    }

    def values(end_time: str, reason: str | None = "Demo Day") -> dict[str, object]:
        return {
            "environment": {
                "type": "static_select",
                "selected_option": {"value": "staging", "text": {"type": "plain_text", "text": "staging"}},
            },
            "start_date": {"type": "datepicker", "selected_date": "2026-12-01"},
            "start_time": {"type": "timepicker", "selected_time": "14:00"},
            "end_date": {"type": "datepicker", "selected_date": "2026-12-01"},
            "end_time": {"type": "timepicker", "selected_time": end_time},
            "reason": reason,
        }

    bad = await bot.slack.view_submission("freeze.new", values("13:00"), user_id="U0CAROL")
    assert bad.json() == {"response_action": "errors", "errors": {"end_time": "The window ends before it starts."}}
    missing = await bot.slack.view_submission("freeze.new", values("18:00", reason=None), user_id="U0CAROL")
    assert missing.json()["errors"] == {"reason": "Say why the window is needed."}
    assert bot.fake.calls_to("chat.postMessage") == []

    good = await bot.slack.view_submission("freeze.new", values("18:00"), user_id="U0CAROL")
    assert good.status_code == 200 and not good.content
    call = await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1 on staging"))
    assert "2026-12-01 14:00 CET" in blocks_text(call.args["blocks"])


async def test_a_window_a_year_ahead_is_still_accepted(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "in 365d for 1h Next year", user_id="U0CAROL")
    assert "Created freeze #1" in await reply_text(bot)


async def test_a_window_stored_at_the_end_of_the_calendar_does_not_break_list_or_status(bot: BotHarness) -> None:
    """Stored before windows were limited to a year ahead: its local time is past year 9999."""
    async with bot.runtime.db.unit_of_work() as session:
        session.add(
            FreezeWindowRecord(
                environment="production",
                reason="End of time",
                created_by="U0CAROL",
                starts_at=datetime(9999, 12, 31, 22, tzinfo=UTC),
                ends_at=datetime(9999, 12, 31, 23, tzinfo=UTC),
                created_at=bot.clock.now(),
            )
        )
    await bot.slack.slash("/freeze", "list")
    text = await reply_text(bot)
    assert "1 freeze window active or upcoming" in text and "9999-12-31 23:00 UTC" in text
    bot.fake.reset()
    await bot.slack.slash("/freeze", "status")
    assert "Next: #1 from" in await reply_text(bot)
    bot.fake.reset()
    await bot.slack.slash("/freeze", "extend #1 30m", user_id="U0CAROL")
    assert "starts more than a year ahead" in await reply_text(bot)


async def test_form_errors_show_on_the_field_at_fault(bot: BotHarness) -> None:
    def values(start_date: str = "2026-12-01", reason: str = "Demo Day") -> dict[str, object]:
        return {
            "environment": {"type": "static_select", "selected_option": {"value": "production"}},
            "start_date": {"type": "datepicker", "selected_date": start_date},
            "start_time": {"type": "timepicker", "selected_time": "14:00"},
            "end_date": {"type": "datepicker", "selected_date": "2026-12-01"},
            "end_time": {"type": "timepicker", "selected_time": "18:00"},
            "reason": reason,
        }

    cases = {
        "not a date": (values(start_date="2026-02-30"), {"start_date": "`2026-02-30` is not a date."}),
        "a year ahead": (
            values(start_date="2028-01-01"),
            {"start_date": "The window starts more than a year ahead (at most 365 days from now)."},
        ),
        # NUL is refused by PostgreSQL: the service refuses control characters before storing anything.
        "NUL in the reason": (
            values(reason="Demo\x00Day"),
            {"reason": "The reason contains a control character; write it as plain text."},
        ),
    }
    for name, (submitted, errors) in cases.items():
        answer = await bot.slack.view_submission("freeze.new", submitted, user_id="U0CAROL")
        assert answer.json() == {"response_action": "errors", "errors": errors}, name
    assert await bot.runtime.freezes.upcoming() == []
    assert bot.fake.calls_to("chat.postMessage") == []


async def test_user_text_cannot_ping_the_channel(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "for 1h <!channel> deploy party", user_id="U0CAROL")
    call = await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1"))
    assert "<!channel>" not in call.args["text"] and "&lt;!channel&gt;" in call.args["text"]
    assert "<!channel>" not in blocks_text(call.args["blocks"])


async def test_the_form_is_answered_before_a_slow_announcement(bot: BotHarness) -> None:
    await bot.slack.slash("/freeze", "new", user_id="U0CAROL")
    await bot.fake.wait_for("views.open")
    bot.fake.delay("chat.postMessage", 4.0)  # Slack gives a view submission 3 s
    values = {
        "environment": {"type": "static_select", "selected_option": {"value": "production"}},
        "start_date": {"type": "datepicker", "selected_date": "2026-12-01"},
        "start_time": {"type": "timepicker", "selected_time": "14:00"},
        "end_date": {"type": "datepicker", "selected_date": "2026-12-01"},
        "end_time": {"type": "timepicker", "selected_time": "18:00"},
        "reason": "Demo Day",
    }
    answered = await asyncio.wait_for(bot.slack.view_submission("freeze.new", values, user_id="U0CAROL"), 2.5)
    assert answered.status_code == 200 and not answered.content
    await bot.fake.wait_for("chat.postMessage", in_deploys("Freeze #1 on production"), timeout=10)
    assert [w.id for w in await bot.runtime.freezes.upcoming()] == [1]


async def demo_day(bot: BotHarness) -> None:
    """A two-hour window on production from now, frozen by Carol."""
    now = bot.clock.now()
    await bot.runtime.freezes.create(
        starts_at=now, ends_at=now + timedelta(hours=2), environment=None, reason="Demo Day", actor="U0CAROL"
    )


async def test_answers_that_need_no_database_come_in_the_acknowledgement(bot: BotHarness) -> None:
    """Usage, typos, and the list or status from a fresh snapshot are answered in the HTTP
    acknowledgement (Slack shows it like a response_url post): each command gets exactly one answer."""
    mark = bot.fake.mark()
    typo = await bot.slack.slash("/freeze", "frobnicate", user_id="U0CAROL")
    assert typo.json()["response_type"] == "ephemeral" and "I don't know `/freeze frobnicate`" in typo.json()["text"]
    assert [r.text for r in bot.fake.responses_after(mark)] == [typo.json()["text"]]

    await demo_day(bot)
    for n, command in enumerate(("list", "status", "list")):
        mark = bot.fake.mark()
        started = asyncio.get_running_loop().time()
        acked = await bot.slack.slash("/freeze", command, user_id="U0CAROL")
        took = asyncio.get_running_loop().time() - started
        answer = await bot.fake.wait_for_response(after=mark)
        assert "Demo Day" in blocks_text(answer.blocks or []) or "frozen" in (answer.text or "")
        await asyncio.sleep(0.1)  # an absence cannot be awaited: room for a second answer to arrive
        assert len(bot.fake.responses_after(mark)) == 1, command
        if n > 0 and took < 0.5:  # the first command loaded the snapshot (TTL 1 s)
            assert acked.content and acked.json()["text"] == answer.text, f"{command} answered after the ack"


async def test_an_exemption_request_links_the_deploys_channel(bot: BotHarness) -> None:
    await demo_day(bot)
    await bot.slack.slash("/freeze", "exempt #1 api 30m hotfix", user_id="U0CAROL")
    reply = await bot.fake.wait_for_response()
    assert blocks_text(reply.blocks or []) == (
        f"Asked for exemption #1; another responder must approve it in <#{DEPLOYS}>."
    )  # was escaped into "&lt;#C0DEPLOYS&gt;", shown as text instead of a link
