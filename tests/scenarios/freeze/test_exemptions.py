"""Break-glass: a responder asks, a different responder approves with a button, deploys pass the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from bot.sandbox.standin.blocks import blocks_text
from bot.services.freeze.models import Exemption, ExemptionStatus, FreezeNotice, FreezeWindow, NoticeKind
from bot.services.freeze.on_incident import FreezeForIncidents
from bot.slack import freeze_view
from tests.support.bot import API_TOKEN, BotHarness

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DEPLOY = {"environment": "production", "service": "api", "version": "v1.4.3", "actor": "ci"}


def text_is(expected: str):  # type: ignore[no-untyped-def]
    return lambda c: c.args.get("text") == expected


async def frozen(bot: BotHarness) -> int:
    window = await bot.runtime.freezes.create(
        starts_at=bot.clock.now(),
        ends_at=bot.clock.now() + timedelta(hours=4),
        environment=None,
        reason="Demo Day",
        actor="U0CAROL",
    )
    return window.id


async def ephemeral_reply(bot: BotHarness) -> str:
    reply = await bot.fake.wait_for_response()
    return str(reply.body.get("text"))


async def test_two_responders_unlock_one_service_until_the_exemption_expires(bot: BotHarness) -> None:
    bot.fake.usergroups["S0SRE"] = ["U0ERIN"]
    await frozen(bot)
    await bot.slack.slash("/freeze", "exempt #1 api 30m checkout is down, hotfix", user_id="U0CAROL")
    assert "Asked for exemption #1" in await ephemeral_reply(bot)
    request = await bot.fake.wait_for("chat.postMessage", text_is("U0CAROL asks to deploy api during freeze #1"))
    assert "A *different* responder must approve" in blocks_text(request.args["blocks"])

    async with httpx.AsyncClient(base_url=bot.url) as api:
        assert (await api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH)).status_code == 423

        # The requester cannot approve their own request.
        bot.fake.reset()
        await bot.slack.block_action(
            "freeze.exemption.approve",
            "1",
            user_id="U0CAROL",
            channel_id="C0DEPLOYS",
            message=request.args | {"ts": request.response["ts"]},
        )
        assert "A different responder must approve" in await ephemeral_reply(bot)
        # A member of the S0SRE user group can.
        bot.fake.reset()
        bot.fake.usergroups["S0SRE"] = ["U0ERIN"]  # reset() reseeds the workspace
        await bot.slack.block_action(
            "freeze.exemption.approve",
            "1",
            user_id="U0ERIN",
            channel_id="C0DEPLOYS",
            message=request.args | {"ts": request.response["ts"]},
        )
        replaced = await bot.fake.wait_for_response()
        assert replaced.body.get("replace_original") is True and "*approved* by <@U0ERIN>" in blocks_text(
            replaced.body["blocks"]
        )
        await bot.fake.wait_for("chat.postMessage", text_is("Exemption #1 approved: api may deploy during freeze #1"))
        assert bot.fake.calls_to("usergroups.users.list")

        gate = await api.get("/api/v1/freeze", params={"environment": "production", "service": "api"}, headers=AUTH)
        assert gate.status_code == 200 and gate.json()["exemptions"] == [1]
        other = await api.get("/api/v1/freeze", params={"environment": "production", "service": "web"}, headers=AUTH)
        assert other.status_code == 423
        deployed = await api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH)
        assert deployed.status_code == 201 and deployed.json()["exemptions"] == [1]
        used = await bot.fake.wait_for("chat.postMessage", text_is("api v1.4.3 deployed to production by api:ci"))
        assert "using exemption #1" in blocks_text(used.args["blocks"])

        bot.clock.advance(timedelta(minutes=31))
        await bot.runtime.freezes.tick()
        await bot.fake.wait_for("chat.postMessage", text_is("Exemption #1 expired"))
        assert (await api.post("/api/v1/deploys", json=DEPLOY, headers=AUTH)).status_code == 423

    actions = [e.action for e in await bot.runtime.audit.latest(20) if e.action.startswith("freeze.")]
    assert actions == [
        "freeze.created",
        "freeze.exemption_requested",
        "freeze.deploy_blocked",
        "freeze.exemption_approved",
        "freeze.deployed",
        "freeze.exemption_used",
        "freeze.exemption_expired",
        "freeze.deploy_blocked",
    ]


async def test_non_responders_can_neither_ask_nor_approve(bot: BotHarness) -> None:
    await frozen(bot)
    await bot.slack.slash("/freeze", "exempt #1 api 30m please", user_id="U0ALICE")
    assert "Only responders (`access.responders`) can request" in await ephemeral_reply(bot)
    await bot.slack.slash("/freeze", "exempt #1 api 30m hotfix", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", text_is("U0CAROL asks to deploy api during freeze #1"))
    await bot.fake.wait_for_response(lambda r: "Asked for exemption #1" in str(r.body.get("text")))
    bot.fake.reset()
    await bot.slack.block_action("freeze.exemption.approve", "1", user_id="U0MALLORY", channel_id="C0DEPLOYS")
    assert "Only responders (`access.responders`) can approve" in await ephemeral_reply(bot)
    exemptions = await bot.runtime.freezes.exemptions_for([1])
    assert [e.status.value for e in exemptions] == ["pending"]
    denied = [(e.actor, e.subject) for e in await bot.runtime.audit.latest(10) if e.action == "freeze.exemption_denied"]
    assert denied == [("U0ALICE", "freeze#1"), ("U0MALLORY", "exemption#1")]


async def test_a_refused_request_stays_refused(bot: BotHarness) -> None:
    await frozen(bot)
    await bot.slack.slash("/freeze", "exempt #1 api 30m hotfix", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", text_is("U0CAROL asks to deploy api during freeze #1"))
    await bot.slack.block_action("freeze.exemption.refuse", "1", user_id="U0DAVE", channel_id="C0DEPLOYS")
    await bot.fake.wait_for("chat.postMessage", text_is("Exemption #1 refused"))
    await bot.fake.wait_for_response(lambda r: "*refused*" in str(r.body.get("blocks")))
    bot.fake.reset()
    await bot.slack.block_action("freeze.exemption.approve", "1", user_id="U0DAVE", channel_id="C0DEPLOYS")
    assert "Exemption #1 was already refused by <@U0DAVE>." in await ephemeral_reply(bot)
    assert (await bot.runtime.freezes.gate("production", service="api")).frozen


async def test_a_forged_or_unknown_exemption_button_is_answered_not_crashed(bot: BotHarness) -> None:
    for forged in ("not-a-number", "²", "٣", "9999999999", "+1", " 1"):
        bot.fake.reset()
        await bot.slack.block_action("freeze.exemption.approve", forged, user_id="U0DAVE")
        assert "does not name an exemption" in await ephemeral_reply(bot), forged
    bot.fake.reset()
    await bot.slack.block_action("freeze.exemption.approve", "99", user_id="U0DAVE")
    assert "There is no exemption #99." in await ephemeral_reply(bot)


async def test_approving_after_the_window_ended_is_refused(bot: BotHarness) -> None:
    await frozen(bot)
    await bot.slack.slash("/freeze", "exempt #1 api 30m hotfix", user_id="U0CAROL")
    await bot.fake.wait_for("chat.postMessage", text_is("U0CAROL asks to deploy api during freeze #1"))
    await bot.fake.wait_for_response(lambda r: "Asked for exemption #1" in str(r.body.get("text")))
    bot.fake.reset()
    bot.clock.advance(timedelta(hours=5))
    await bot.slack.block_action("freeze.exemption.approve", "1", user_id="U0DAVE", channel_id="C0DEPLOYS")
    assert "Window #1 is not in force any more" in await ephemeral_reply(bot)


async def test_an_exemption_names_a_service_the_gate_can_match(bot: BotHarness) -> None:
    await frozen(bot)
    for service in ("🚀", "<!channel>", "a&b", "-api"):
        bot.fake.reset()
        await bot.slack.slash("/freeze", f"exempt #1 {service} 30m hotfix", user_id="U0CAROL")
        assert "Name the service to exempt as CI names it" in await ephemeral_reply(bot), service
    assert await bot.runtime.freezes.exemptions_for([1]) == []
    # Typed in Slack, control characters are dropped before any feature sees the text.
    bot.fake.reset()
    await bot.slack.slash("/freeze", "exempt #1 api 30m hot\x1bfix", user_id="U0CAROL")
    assert "Asked for exemption #1" in await ephemeral_reply(bot)
    assert [e.reason for e in await bot.runtime.freezes.exemptions_for([1])] == ["hotfix"]


def test_the_approve_dialog_escapes_the_service_name() -> None:
    """Names are checked now, but a request stored earlier may hold anything."""
    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    window = FreezeWindow(1, "production", "Demo Day", now, now + timedelta(hours=2), "U0CAROL", now)
    exemption = Exemption(
        7, 1, "<!channel>&x", timedelta(minutes=30), "hotfix", "U0CAROL", now, ExemptionStatus.PENDING
    )
    _, rendered = freeze_view.render_notice(
        FreezeNotice(NoticeKind.EXEMPTION_REQUESTED, now, "U0CAROL", window, exemption=exemption),
        ZoneInfo("Europe/Berlin"),
    )
    confirm = rendered[1]["elements"][0]["confirm"]["text"]["text"]
    assert "<!channel>" not in confirm and "`&lt;!channel&gt;&amp;x`" in confirm


async def test_a_control_character_in_an_incident_title_does_not_cost_its_freeze(bot: BotHarness) -> None:
    """Freeze reasons refuse control characters; the incident's freeze turns them into spaces instead."""
    freezer = FreezeForIncidents(bot.runtime.freezes, bot.clock, timedelta(hours=4))
    active = await freezer.freeze_for_incident(
        environment="production", incident_id=1, reason="Incident #1: db\x07down", actor="U0CAROL"
    )
    assert active.reason == "Incident #1: db down"
    assert (await bot.runtime.freezes.gate("production")).frozen
