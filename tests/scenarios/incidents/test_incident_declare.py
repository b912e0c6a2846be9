"""Declaring an incident: channel, invitations, header, playbook message, link back."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.recorder import Call
from tests.support.clock import FakeClock
from tests.support.incidents import (
    IncidentBot,
    attempt_value,
    declare,
    declared,
    incident_bot,
    incident_config,
    text_of,
    value_of,
)


async def test_declare_creates_the_channel_invites_people_and_posts_header_and_playbook(ibot: IncidentBot) -> None:
    bot = ibot.bot
    channel = await declare(bot, "API returns 500s sev1")

    created = bot.fake.calls_to("conversations.create")[0]
    assert created.args["name"] == "inc-20261130-api-returns-500s"
    invite = await bot.fake.wait_for("conversations.invite")
    assert invite.args["users"].split(",") == ["U0CAROL", "U0DAVE", "U0ERIN", "U0FRANK"]  # S0SRE expanded
    assert set(bot.fake.members[channel]) >= {"U0CAROL", "U0DAVE", "U0ERIN", "U0FRANK"}

    header, playbook = bot.fake.messages_in(channel)[:2]
    header_text = blocks_text(header["blocks"])
    assert "Incident #1: API returns 500s" in header_text
    assert "SEV1" in header_text and "<@U0CAROL>" in header_text and "open" in header_text
    playbook_text = blocks_text(playbook["blocks"])
    for label in ("Roll back last deploy", "Disable worker", "Verify database and queue", "Replay failed jobs"):
        assert label in playbook_text
    assert playbook_text.count("not run") == 4
    assert "Checks the database and the jobs queue" in playbook_text
    run_buttons = [
        e
        for b in playbook["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("incident.step.run:")
    ]
    assert [b["action_id"] for b in run_buttons] == [
        "incident.step.run:rollback",
        "incident.step.run:disable-worker",
        "incident.step.run:verify",
        "incident.step.run:replay",
    ]
    # production-changing steps carry Slack's confirm dialog saying exactly what will happen
    assert run_buttons[0]["confirm"]["text"]["text"] == "POST https://deploy.example.com/rollback"
    assert "confirm" not in run_buttons[2]

    link = bot.fake.responses[-1]
    assert link.body["response_type"] == "in_channel"
    assert f"<#{channel}>" in link.body["text"] and "Incident #1" in link.body["text"]

    open_now = await bot.runtime.incidents.open_incidents()
    assert [(i.id, i.title, i.severity, i.channel_id) for i in open_now] == [(1, "API returns 500s", "sev1", channel)]
    actions = [e.action for e in await bot.runtime.audit.latest(10)]
    assert "incident.declared" in actions and "incident.channel_created" in actions


async def test_default_severity_is_sev2_and_playbook_can_be_chosen(ibot: IncidentBot) -> None:
    bot = ibot.bot
    channel = await declare(bot, "Queue backlog --playbook small")
    header, playbook = bot.fake.messages_in(channel)[:2]
    assert "SEV2" in blocks_text(header["blocks"])
    assert "Verify only" in blocks_text(playbook["blocks"])
    assert "Roll back" not in blocks_text(playbook["blocks"])
    # playbook names are compared case-insensitively, whichever way the option is written
    for number, option in ((2, "--playbook Small"), (3, "--playbook=SMALL")):
        channel = await declare(bot, f"Queue backlog {option}")
        await bot.fake.wait_for_response(declared(number))
        assert "Verify only" in blocks_text(bot.fake.messages_in(channel)[1]["blocks"])


async def test_a_taken_channel_name_gets_a_suffix(ibot: IncidentBot) -> None:
    bot = ibot.bot
    bot.fake.add_channel("inc-20261130-db-down")
    bot.fake.add_channel("inc-20261130-db-down-2")
    channel = await declare(bot, "DB down!")
    assert bot.fake.channels[channel]["name"] == "inc-20261130-db-down-3"
    assert [c.error for c in bot.fake.calls_to("conversations.create")] == ["name_taken", "name_taken", None]


async def test_a_long_odd_title_still_makes_a_valid_channel_name(ibot: IncidentBot) -> None:
    bot = ibot.bot
    channel = await declare(bot, "Überlastung: Zahlungen & Bestellungen schlagen fehl — " + "sehr " * 15)
    name = bot.fake.channels[channel]["name"]
    assert len(name) <= 80 and name.startswith("inc-20261130-berlastung-zahlungen-bestellungen")


async def test_bad_declarations_are_explained(ibot: IncidentBot) -> None:
    bot = ibot.bot
    cases = {
        "declare": "needs a title",
        "declare sev1": "needs a title",
        "declare API down sev4": "Unknown severity `sev4`",
        "declare API down sev1 sev2": "one severity",
        "declare API down --playbook": "`--playbook` needs a playbook name",
        "declare API down --playbook nope": "no playbook called `nope`",
        "declare API down --force": "Unknown option `--force`",
    }
    for text, expected in cases.items():
        fresh = bot.fake.mark()
        await bot.slack.slash("/incident", text, user_id="U0CAROL")
        reply = await bot.fake.wait_for_response(after=fresh)
        assert expected in reply.body["text"], (text, reply.body["text"])
        assert reply.body["response_type"] == "ephemeral"
    assert bot.fake.calls_to("conversations.create") == []
    assert await bot.runtime.incidents.open_incidents() == []


async def test_unknown_subcommands_and_wrong_channels_get_usage(ibot: IncidentBot) -> None:
    bot = ibot.bot
    await bot.slack.slash("/incident", "explode")
    reply = await bot.fake.wait_for_response()
    assert "I don't know `/incident explode`" in reply.body["text"] and "Usage:" in reply.body["text"]
    await bot.slack.slash("/incident", "")
    reply = await bot.fake.wait_for_response(lambda r: r is not bot.fake.responses[0])
    assert reply.body["text"].startswith("Usage:")
    for sub in ("status", "note hi", "playbook", "resolve"):
        fresh = bot.fake.mark()
        await bot.slack.slash("/incident", sub, channel_id="C0GENERAL")
        reply = await bot.fake.wait_for_response(after=fresh)
        assert "works in an incident's channel" in reply.body["text"], sub


async def test_the_health_answers_button_declares_for_the_failing_services(ibot: IncidentBot) -> None:
    bot = ibot.bot
    fresh = bot.fake.mark()
    await bot.slack.block_action("health.declare_incident", '{"services": ["api", "jobs"]}', user_id="U0DAVE")
    created = await bot.fake.wait_for("conversations.create", after=fresh)
    assert created.args["name"] == "inc-20261130-api-jobs-down"
    link = await bot.fake.wait_for_response(lambda r: "declared by" in str(r.body.get("text")))
    assert "api, jobs down" in link.body["text"] and "<@U0DAVE>" in link.body["text"]
    header = bot.fake.messages_in(created.response["channel"]["id"])[0]
    assert "SEV2" in blocks_text(header["blocks"])

    await bot.slack.block_action("health.declare_incident", "not json", user_id="U0DAVE")
    reply = await bot.fake.wait_for_response(lambda r: "does not say which services" in str(r.body.get("text")))
    assert reply.body["response_type"] == "ephemeral"
    assert len(bot.fake.calls_to("conversations.create")) == 1
    assert not any("declared" in text_of(c) for c in bot.fake.calls_to("chat.postMessage"))


async def test_when_slack_refuses_the_playbook_message_the_declarer_is_told_how_to_repost(ibot: IncidentBot) -> None:
    bot = ibot.bot
    bot.fake.fail("chat.postMessage", "rate_limited_internal")
    channel = await declare(bot, "Payments down")
    hint = await bot.fake.wait_for_response(lambda r: "/incident playbook" in str(r.body.get("text")))
    assert hint.body["response_type"] == "ephemeral" and "rate_limited_internal" in hint.body["text"]
    assert (await bot.runtime.incidents.in_channel(channel)) is not None
    fresh = bot.fake.mark()
    await bot.slack.slash("/incident", "playbook", user_id="U0CAROL", channel_id=channel)
    posted = await bot.fake.wait_for("chat.postMessage", after=fresh)
    assert "Roll back last deploy" in blocks_text(posted.args["blocks"])


async def test_a_long_playbook_still_fits_in_one_slack_message(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    steps = "".join(
        f"""
      - id: step-{n}
        label: Step number {n}
        description: {"why " * 40}
        changes_production: true
        action: {{http: {{url: "https://deploy.example.com/s{n}"}}}}
        undo: {{http: {{url: "https://deploy.example.com/u{n}"}}}}"""
        for n in range(30)
    )
    config = incident_config(tmp_path, f"playbooks:\n  - name: huge\n    steps:{steps}\n")
    async with incident_bot(database_url=database_url, config_dir=config, fake=fake_slack, clock=clock) as ibot:
        channel = await declare(ibot.bot, "Everything")
        playbook = ibot.fake.messages_in(channel)[1]
        text = blocks_text(playbook["blocks"])
        assert "Step number 23" in text and "Step number 24" not in text
        assert "6 more steps are not shown" in text


async def test_one_uninvitable_user_does_not_keep_the_others_out(ibot: IncidentBot) -> None:
    bot = ibot.bot
    bot.fake.fail("conversations.invite", "user_is_restricted")  # the batch fails once
    channel = await declare(bot, "Login broken")
    await bot.fake.wait_for("conversations.invite", lambda c: c.args["users"] == "U0FRANK")
    assert set(bot.fake.members[channel]) >= {"U0CAROL", "U0DAVE", "U0ERIN", "U0FRANK"}


async def test_when_slack_refuses_the_channel_the_declarer_is_told(ibot: IncidentBot) -> None:
    bot = ibot.bot
    bot.fake.fail("conversations.create", "restricted_action")
    await bot.slack.slash("/incident", "declare Login broken", user_id="U0CAROL")
    reply = await bot.fake.wait_for_response(lambda r: "refused to create" in str(r.body.get("text")))
    assert "Incident #1 is declared" in reply.body["text"] and "`restricted_action`" in reply.body["text"]
    assert reply.body["response_type"] == "ephemeral"


class _Heard(logging.Handler):
    """Wakes the test once `count` log records containing `text` arrived."""

    def __init__(self, text: str, count: int) -> None:
        super().__init__()
        self.text, self.count, self.lines, self.done = text, count, list[str](), asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.lines.append(record.getMessage())
            if len(self.lines) >= self.count:
                self.done.set()


async def test_a_step_message_with_nowhere_to_go_is_logged_not_dropped_silently(ibot: IncidentBot) -> None:
    bot = ibot.bot
    bot.fake.fail("conversations.create", "restricted_action")
    await bot.slack.slash("/incident", "declare Login broken", user_id="U0CAROL")
    await bot.fake.wait_for_response(lambda r: "refused to create" in str(r.text))
    heard = _Heard("has no channel; not posted", 3)  # started, progress, result
    logger = logging.getLogger("bot.slack.incident_posts")
    logger.addHandler(heard)
    try:
        # Only a forged click can name this incident: the step runs, and its messages are logged.
        await bot.slack.block_action("incident.step.run:verify", attempt_value(1, 0), user_id="U0CAROL")
        await asyncio.wait_for(heard.done.wait(), 5)
    finally:
        logger.removeHandler(heard)
    assert "started by <@U0CAROL>" in heard.lines[0] and "succeeded" in heard.lines[-1]


async def test_control_characters_typed_into_a_command_are_dropped(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot, "API\x00 returns 500s sev3")
    header = ibot.fake.messages_in(channel)[0]
    assert "API returns 500s" in blocks_text(header["blocks"])


async def test_a_click_the_moment_the_buttons_appear_is_heard_in_the_channel(ibot: IncidentBot) -> None:
    """Slack has shown the buttons but has not yet answered the bot's post: a click now must find
    the incident's channel (the bot records it before posting buttons) and report there."""
    bot, fake = ibot.bot, ibot.fake
    run = "incident.step.run:verify"
    released = fake.hold("chat.postMessage", lambda c: run in str(c.args.get("blocks")))
    mark = fake.mark()
    await bot.slack.slash("/incident", "declare Checkout down sev2", user_id="U0CAROL")
    buttons = await fake.wait_for("chat.postMessage", lambda c: run in str(c.args.get("blocks")), after=mark)
    channel = str(buttons.args["channel"])

    await bot.slack.block_action(run, value_of(bot, channel, run), user_id="U0CAROL", channel_id=channel)

    def in_channel(c: Call) -> bool:
        return c.args.get("channel") == channel

    await fake.wait_for("chat.postMessage", lambda c: in_channel(c) and "started by <@U0CAROL>" in text_of(c))
    await fake.wait_for("chat.postMessage", lambda c: in_channel(c) and "* succeeded after" in text_of(c))
    assert ibot.actions.runs["verify"] == 1

    released.set()
    await fake.wait_for_response(lambda r: "declared by" in str(r.text), after=mark)
    # The playbook message catches up with the run it missed while its post was in flight.
    playbook = await fake.wait_for("chat.update", lambda c: c.args["ts"] == buttons.response["ts"], after=mark)
    assert "succeeded" in blocks_text(playbook.args["blocks"])
    # Later messages go to the playbook's thread again.
    await bot.slack.block_action(run, value_of(bot, channel, run), user_id="U0CAROL", channel_id=channel)
    again = await fake.wait_for("chat.postMessage", lambda c: "(run 2)" in text_of(c) and "succeeded" in text_of(c))
    assert again.args["thread_ts"] == buttons.response["ts"]
