"""In the incident channel: status, notes, the playbook again, resolve — and the postmortem export."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.sandbox.standin.blocks import blocks_text
from tests.support.cli import run
from tests.support.incidents import IncidentBot, declare, text_of


async def slash(ibot: IncidentBot, text: str, channel: str, user: str = "U0CAROL") -> str:
    mark = ibot.fake.mark()
    await ibot.bot.slack.slash("/incident", text, user_id=user, channel_id=channel)
    reply = await ibot.fake.wait_for_response(after=mark)
    return f"{reply.response_type}|{reply.text}|{blocks_text(reply.blocks)}"


async def test_status_note_playbook_and_resolve_with_durations(
    ibot: IncidentBot, database_url: str, tmp_path: Path
) -> None:
    channel = await declare(ibot.bot, "Checkout fails sev1")
    clock = ibot.bot.clock

    clock.advance(timedelta(minutes=2))
    reply = await slash(ibot, "note rolled back by hand | maybe", channel, user="U0DAVE")
    assert reply.startswith("in_channel|") and "Note from <@U0DAVE>: rolled back by hand" in reply
    assert "A note needs text" in await slash(ibot, "note", channel)

    mark = ibot.fake.mark()
    await ibot.bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)

    status = await slash(ibot, "status", channel)
    assert status.startswith("ephemeral|") and "Incident #1: Checkout fails" in status
    assert "✅ succeeded" in status and "⚪ not run" in status

    mark = ibot.fake.mark()
    await ibot.bot.slack.slash("/incident", "playbook", user_id="U0CAROL", channel_id=channel)
    reposted = await ibot.fake.wait_for("chat.postMessage", lambda c: c.args.get("blocks") is not None, after=mark)
    assert "✅ succeeded" in blocks_text(reposted.args["blocks"])
    # once the bot says so, step updates go to the newest copy of the buttons
    await ibot.fake.wait_for_response(lambda r: "posted again below" in str(r.text), after=mark)
    mark = ibot.fake.mark()
    await ibot.bot.slack.block_action("incident.step.run:verify", user_id="U0CAROL", channel_id=channel)
    await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=mark)
    assert {c.args["ts"] for c in ibot.fake.calls_to("chat.update", after=mark)} == {reposted.response["ts"]}

    clock.advance(timedelta(minutes=63))
    resolved = await slash(ibot, "resolve Bad deploy of checkout; rolled back", channel)
    assert resolved.startswith("in_channel|Incident #1 resolved after 1h 05m")
    assert "Summary:* Bad deploy of checkout; rolled back" in resolved
    assert "Roll back last deploy: succeeded by <@U0CAROL>" in resolved
    assert "Verify database and queue: succeeded" in resolved
    assert await ibot.bot.runtime.incidents.open_incidents() == []
    final = ibot.fake.find_message(channel, reposted.response["ts"])
    assert final is not None and "incident resolved, buttons removed" in blocks_text(final["blocks"])
    assert not any(b["type"] == "actions" for b in final["blocks"])
    header = ibot.fake.messages_in(channel)[0]
    assert "resolved" in blocks_text(header["blocks"]) and "open" not in blocks_text(header["blocks"])

    assert "already resolved" in await slash(ibot, "resolve", channel)
    assert "no longer runs" in await slash(ibot, "playbook", channel)
    # The click is refused with the words the `playbook` reply just used: only a reply that came
    # after the click may count, or the export below can run before the refusal is audited.
    mark = ibot.fake.mark()
    await ibot.bot.slack.block_action(
        "incident.step.run:replay", '{"i":1,"a":0}', user_id="U0CAROL", channel_id=channel
    )
    refused = await ibot.fake.wait_for_response(
        lambda r: "is resolved; its playbook no longer runs" in str(r.text), after=mark
    )
    assert refused.name == "incident.step.run:replay"

    # the postmortem draft, from the audit log, through the CLI
    out = tmp_path / "postmortem.md"
    result = run(
        "incident",
        "export",
        "1",
        "--format",
        "markdown",
        "-o",
        str(out),
        env={"DATABASE_URL": database_url, "GUARDRAIL_CONFIG": str(tmp_path / "config")},
    )
    assert result.returncode == 0, result.stderr
    markdown = out.read_text()
    assert markdown.startswith("# Postmortem draft: incident #1 — Checkout fails")
    assert "- **Severity:** sev1" in markdown and "(after 1h 05m)" in markdown
    assert "Bad deploy of checkout; rolled back" in markdown
    timeline = markdown.split("## Timeline")[1].split("## Steps run")[0]
    assert "| 10:00:00 | U0CAROL | Incident declared (sev1): Checkout fails |" in timeline  # Europe/Berlin
    assert "| 10:02:00 | U0DAVE | Note: rolled back by hand \\| maybe |" in timeline
    assert "Step **Roll back last deploy** started (run 1): POST https://deploy.example.com/rollback" in timeline
    assert "Refused to run step `replay` (resolved)" in timeline
    assert timeline.index("Incident declared") < timeline.index("Note:") < timeline.index("Incident resolved")
    steps = markdown.split("## Steps run")[1]
    assert "| Roll back last deploy | 1 | U0CAROL | 10:02:00 | 0.0s | succeeded: rollback done |" in steps
    assert "| Verify database and queue | 1 | U0CAROL |" in steps

    missing = run(
        "incident", "export", "42", env={"DATABASE_URL": database_url, "GUARDRAIL_CONFIG": str(tmp_path / "config")}
    )
    assert missing.returncode == 2 and "no incident #42" in missing.stderr


async def test_note_and_status_point_elsewhere_outside_incident_channels(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot, "Search slow sev3")
    reply = await slash(ibot, "status", "C0GENERAL")
    assert "works in an incident's channel" in reply and f"#1 <#{channel}>" in reply


def test_incident_export_has_help() -> None:
    for args in (["incident"], ["incident", "export"]):
        result = run(*args, "--help")
        assert result.returncode == 0 and "usage: guardrail incident" in result.stdout, result.stderr
