"""Pressing playbook buttons: message updates, exactly once, who may, order, freezes, preview, undo."""

from __future__ import annotations

from datetime import timedelta

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.recorder import Call
from tests.support.incidents import IncidentBot, attempt_value, declare, text_of, value_of

RUN = "incident.step.run:"


def playbook_text(ibot: IncidentBot, channel: str) -> str:
    return blocks_text(ibot.fake.messages_in(channel)[1]["blocks"])


async def click_and_wait(
    ibot: IncidentBot, channel: str, step: str, *, user: str = "U0CAROL", verdict: str = "succeeded"
) -> Call:
    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action(RUN + step, user_id=user, channel_id=channel)
    return await ibot.fake.wait_for("chat.postMessage", lambda c: f"* {verdict} after" in text_of(c), after=fresh)


async def test_clicking_each_step_updates_the_playbook_message_in_place(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    playbook_ts = ibot.fake.messages_in(channel)[1]["ts"]
    for step in ("rollback", "disable-worker", "verify", "replay"):
        done = await click_and_wait(ibot, channel, step)
        assert done.args["thread_ts"] == playbook_ts  # outputs go in the thread
    assert dict(ibot.actions.runs) == {"rollback": 1, "disable-worker": 1, "verify": 1, "replay": 1}
    text = playbook_text(ibot, channel)
    assert text.count("succeeded") == 4 and "not run" not in text and "<@U0CAROL>" in text
    updates = [c for c in ibot.fake.calls_to("chat.update") if c.args["ts"] == playbook_ts]
    assert len(updates) == 8  # running, then the result, for each step
    assert "running" in blocks_text(updates[0].args["blocks"])
    thread = [m["text"] for m in ibot.fake.messages_in(channel) if m.get("thread_ts") == playbook_ts]
    assert any("started by <@U0CAROL>" in t and "POST https://deploy.example.com/rollback" in t for t in thread)
    assert any("calling rollback" in t for t in thread)  # progress lines
    actions = [e.action for e in await ibot.bot.runtime.audit.latest(40)]
    assert actions.count("incident.step.started") == 4 and actions.count("incident.step.succeeded") == 4


async def test_a_failing_step_shows_failed_with_the_error_in_the_thread(ibot: IncidentBot) -> None:
    from tests.support.fake_actions import Script

    ibot.actions.scripts["rollback"] = Script("fail")
    ibot.actions.scripts["verify"] = Script("raise")
    channel = await declare(ibot.bot)
    failed = await click_and_wait(ibot, channel, "rollback", verdict="failed")
    assert "rollback answered 503" in text_of(failed) and '"status": 503' in text_of(failed)
    crashed = await click_and_wait(ibot, channel, "verify", verdict="failed")
    assert "RuntimeError: verify exploded" in text_of(crashed)
    assert playbook_text(ibot, channel).count("❌ failed") == 2
    # a failed production step may simply be pressed again: no "run again" confirmation needed
    ibot.actions.scripts.clear()
    await click_and_wait(ibot, channel, "rollback")
    assert ibot.actions.runs["rollback"] == 2


async def test_a_double_click_while_running_and_a_redelivered_click_run_once(ibot: IncidentBot) -> None:
    gate = ibot.actions.hang("rollback")
    channel = await declare(ibot.bot)
    original = value_of(ibot.bot, channel, RUN + "rollback")
    assert original == attempt_value(1, 0)
    await ibot.bot.slack.block_action(RUN + "rollback", original, user_id="U0CAROL", channel_id=channel)
    await ibot.actions.started.wait()
    await ibot.fake.wait_for("chat.update", lambda c: "running" in blocks_text(c.args["blocks"]))

    await ibot.bot.slack.block_action(RUN + "rollback", original, user_id="U0DAVE", channel_id=channel)
    busy = await ibot.fake.wait_for_response(lambda r: "already running" in str(r.text))
    assert busy.response_type == "ephemeral" and "<@U0CAROL>" in str(busy.text)

    gate.set()
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c))
    # Slack (or a proxy) delivers the very same click again after it finished
    await ibot.bot.slack.block_action(RUN + "rollback", original, user_id="U0CAROL", channel_id=channel)
    stale = await ibot.fake.wait_for_response(lambda r: "ran since that button was drawn" in str(r.text))
    assert stale.response_type == "ephemeral"
    assert ibot.actions.runs["rollback"] == 1
    refusals = [
        e.details["code"] for e in await ibot.bot.runtime.audit.latest(20) if e.action == "incident.step.refused"
    ]
    assert refusals == ["running", "stale"]


async def test_someone_not_on_the_rota_is_refused_and_it_is_audited(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    before = list(ibot.fake.calls_to("chat.update"))
    await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0MALLORY", channel_id=channel)
    refusal = await ibot.fake.wait_for_response(lambda r: "Only responders" in str(r.text))
    assert refusal.response_type == "ephemeral"
    entry = (await ibot.bot.runtime.audit.latest(1))[0]
    assert (entry.action, entry.actor, entry.subject, entry.details["code"]) == (
        "incident.step.refused",
        "U0MALLORY",
        "incident:1",
        "not_responder",
    )
    assert ibot.actions.runs["rollback"] == 0
    assert ibot.fake.calls_to("chat.update") == before
    # a member of the responders' user group (S0SRE → U0ERIN) may press
    await click_and_wait(ibot, channel, "rollback", user="U0ERIN")
    assert ibot.actions.runs["rollback"] == 1


async def test_the_user_group_is_resolved_through_slack_and_cached_briefly(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    lookups = len(ibot.fake.calls_to("usergroups.users.list"))
    await click_and_wait(ibot, channel, "verify", user="U0ERIN")
    await click_and_wait(ibot, channel, "verify", user="U0FRANK")
    assert len(ibot.fake.calls_to("usergroups.users.list")) == lookups  # cached from the invitation
    ibot.fake.usergroups["S0SRE"] = ["U0FRANK"]  # Erin leaves the rota
    ibot.bot.clock.advance(timedelta(minutes=3))
    await ibot.bot.slack.block_action(RUN + "verify", user_id="U0ERIN", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "Only responders" in str(r.text))
    assert len(ibot.fake.calls_to("usergroups.users.list")) == lookups + 1


async def test_replay_is_refused_until_verify_succeeded_recently(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    await ibot.bot.slack.block_action(RUN + "replay", user_id="U0CAROL", channel_id=channel)
    refusal = await ibot.fake.wait_for_response(lambda r: "only after `verify`" in str(r.text))
    assert refusal.response_type == "ephemeral"
    assert str(refusal.text).startswith("⛔ *Replay failed jobs* runs only after `verify`")  # the view's bold
    await ibot.fake.wait_for("chat.update", lambda c: "refused" in blocks_text(c.args["blocks"]))
    # the stored reason is plain words: no markup of the service's own inside the playbook's line
    assert "Replay failed jobs runs only after `verify`" in playbook_text(ibot, channel)
    assert ibot.actions.runs["replay"] == 0

    await click_and_wait(ibot, channel, "verify")
    ibot.bot.clock.advance(timedelta(minutes=16))  # verify_freshness defaults to 15 minutes
    await ibot.bot.slack.block_action(RUN + "replay", user_id="U0CAROL", channel_id=channel)
    stale = await ibot.fake.wait_for_response(lambda r: "within the last 15m" in str(r.text))
    assert stale.response_type == "ephemeral" and ibot.actions.runs["replay"] == 0

    await click_and_wait(ibot, channel, "verify")
    await click_and_wait(ibot, channel, "replay")
    assert ibot.actions.runs["replay"] == 1


async def test_running_a_succeeded_production_step_again_needs_an_explicit_confirmation(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    await click_and_wait(ibot, channel, "rollback")
    await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0DAVE", channel_id=channel)
    ask = await ibot.fake.wait_for_response(lambda r: "already succeeded" in str(r.text))
    assert ask.response_type == "ephemeral" and ibot.actions.runs["rollback"] == 1
    button = ask.body["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Run again" and button["confirm"]
    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
    assert ibot.actions.runs["rollback"] == 2
    # the confirmation button is single-use too
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0DAVE", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "ran since that button was drawn" in str(r.text))
    assert ibot.actions.runs["rollback"] == 2
    # a step that does not change production simply runs again
    await click_and_wait(ibot, channel, "verify")
    await click_and_wait(ibot, channel, "verify")
    assert ibot.actions.runs["verify"] == 2


async def test_during_a_freeze_a_production_step_needs_the_critical_fix_override(ibot: IncidentBot) -> None:
    freeze = ibot.freezes.freeze(7, ibot.bot.clock.now())
    channel = await declare(ibot.bot)
    await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0CAROL", channel_id=channel)
    ask = await ibot.fake.wait_for_response(lambda r: "frozen" in str(r.text))
    assert "freeze #7" in str(ask.text) and "Black Friday" in str(ask.text)
    button = ask.body["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Critical incident fix — run during freeze #7"
    assert ibot.actions.runs["rollback"] == 0 and ibot.freezes.asked == ["production"]

    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0CAROL", channel_id=channel)
    announced = await ibot.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0DEPLOYS")
    assert "Freeze #7 (production) overridden by <@U0CAROL>" in text_of(announced) and f"<#{channel}>" in text_of(
        announced
    )
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
    assert ibot.actions.runs["rollback"] == 1
    override = [e for e in await ibot.bot.runtime.audit.latest(10) if e.action == "incident.freeze_override"]
    assert [(e.actor, e.details["freeze"], e.details["step"]) for e in override] == [("U0CAROL", freeze.id, "rollback")]

    # steps that do not change production are not held up by the freeze
    await click_and_wait(ibot, channel, "verify")
    # a new freeze needs a new override
    ibot.freezes.freeze(8, ibot.bot.clock.now())
    await ibot.bot.slack.block_action(RUN + "disable-worker", user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "freeze #8" in str(r.text))
    assert ibot.actions.runs["disable-worker"] == 0


async def test_preview_shows_what_would_happen_and_changes_nothing(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    updates = len(ibot.fake.calls_to("chat.update"))
    await ibot.bot.slack.block_action("incident.step.preview:rollback", user_id="U0ALICE", channel_id=channel)
    shown = await ibot.fake.wait_for_response(lambda r: "Preview of Roll back last deploy" in str(r.text))
    assert shown.response_type == "ephemeral"
    assert "would POST https://deploy.example.com/rollback" in str(shown.text) and "nothing was changed" in str(
        shown.text
    )
    assert ibot.actions.previews["rollback"] == 1 and ibot.actions.runs["rollback"] == 0
    assert len(ibot.fake.calls_to("chat.update")) == updates
    assert playbook_text(ibot, channel).count("not run") == 4
    assert (await ibot.bot.runtime.audit.latest(1))[0].action == "incident.step.previewed"


async def test_undo_is_offered_after_the_step_succeeded_and_gets_what_the_run_remembered(ibot: IncidentBot) -> None:
    from tests.support.fake_actions import Script

    ibot.actions.scripts["disable-worker"] = Script(remember={"previous_quantity": 3})
    channel = await declare(ibot.bot)
    assert "incident.step.undo:disable-worker" not in str(ibot.fake.messages_in(channel)[1]["blocks"])
    await click_and_wait(ibot, channel, "disable-worker")
    blocks = ibot.fake.messages_in(channel)[1]["blocks"]
    undo = next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "incident.step.undo:disable-worker"
    )
    assert undo["confirm"]["text"]["text"] == "POST https://deploy.example.com/enable-worker"
    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action(undo["action_id"], user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for(
        "chat.postMessage", lambda c: "Undo of *Disable worker* succeeded" in text_of(c), after=fresh
    )
    assert ibot.actions.runs["enable-worker"] == 1
    name, ctx = ibot.actions.contexts[-1]
    assert name == "enable-worker" and ctx.remembered == {"previous_quantity": 3} and ctx.actor == "U0CAROL"
    assert "Undo:" in playbook_text(ibot, channel)


async def test_a_damaged_button_value_is_explained(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    await ibot.bot.slack.block_action(RUN + "rollback", "garbage", user_id="U0CAROL", channel_id=channel)
    reply = await ibot.fake.wait_for_response(lambda r: "damaged" in str(r.text))
    assert reply.response_type == "ephemeral" and ibot.actions.runs["rollback"] == 0
    await ibot.bot.slack.block_action(RUN + "nope", attempt_value(1, 0), user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "no step `nope`" in str(r.text))
    await ibot.bot.slack.block_action(RUN + "rollback", attempt_value(99, 0), user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "no incident #99" in str(r.text))
    seen = {id(r) for r in ibot.fake.responses}  # a forged depth bomb that fits in a 2,000-character value
    await ibot.bot.slack.block_action(RUN + "rollback", "[" * 990 + "]" * 990, user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: id(r) not in seen and "damaged" in str(r.text))


async def test_a_step_its_process_is_still_running_is_never_taken_over_however_long_it_takes(ibot: IncidentBot) -> None:
    gate = ibot.actions.hang("verify")
    channel = await declare(ibot.bot)
    await ibot.bot.slack.block_action(RUN + "verify", user_id="U0CAROL", channel_id=channel)
    await ibot.actions.started.wait()
    await ibot.fake.wait_for("chat.update", lambda c: "running" in blocks_text(c.args["blocks"]))
    shown = value_of(ibot.bot, channel, RUN + "verify")

    # Long past the old "presumed lost" point, and past the lease on the clock: this process is alive
    # and running it, so no click takes it over and no sweep calls it interrupted.
    ibot.bot.clock.advance(timedelta(minutes=20))
    assert await ibot.bot.runtime.incidents.sweep_interrupted() == []
    await ibot.bot.slack.block_action(RUN + "verify", shown, user_id="U0DAVE", channel_id=channel)
    await ibot.fake.wait_for_response(lambda r: "already running" in str(r.text))
    assert ibot.actions.runs["verify"] == 1

    fresh = ibot.fake.mark()
    gate.set()
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
    incident = await ibot.bot.runtime.incidents.get(1)
    assert incident is not None
    view = await ibot.bot.runtime.incidents.playbook_view(incident)
    state = next(v.state for v in view.steps if v.step.id == "verify")
    assert (state.status, state.attempt, state.actor) == ("succeeded", 1, "U0CAROL")


async def test_run_again_during_a_freeze_needs_both_confirmations_in_turn(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    await click_and_wait(ibot, channel, "rollback")
    ibot.freezes.freeze(9, ibot.bot.clock.now())
    await ibot.bot.slack.block_action(RUN + "rollback", user_id="U0CAROL", channel_id=channel)
    again = await ibot.fake.wait_for_response(lambda r: "already succeeded" in str(r.text))
    button = again.body["blocks"][-1]["elements"][0]
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0CAROL", channel_id=channel)
    frozen = await ibot.fake.wait_for_response(lambda r: "freeze #9" in str(r.text))
    assert ibot.actions.runs["rollback"] == 1
    button = frozen.body["blocks"][-1]["elements"][0]
    fresh = ibot.fake.mark()
    await ibot.bot.slack.block_action(button["action_id"], button["value"], user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
    assert ibot.actions.runs["rollback"] == 2
