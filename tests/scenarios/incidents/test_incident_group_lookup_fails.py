"""A member of the responders' user group is told the real cause when Slack cannot list the group."""

from __future__ import annotations

from tests.support.incidents import IncidentBot, declare

RUN = "incident.step.run:"


async def test_a_group_member_hears_that_membership_could_not_be_checked(ibot: IncidentBot) -> None:
    # Slack cannot list the group from the start, so no earlier answer is cached to fall back on.
    ibot.fake.fail("usergroups.users.list", "internal_error", times=100)
    channel = await declare(ibot.bot)
    await ibot.bot.slack.block_action(RUN + "verify", user_id="U0ERIN", channel_id=channel)
    refusal = await ibot.fake.wait_for_response(lambda r: "membership" in str(r.text))
    text = str(refusal.text)
    assert "Could not check your membership of <!subteam^S0SRE> (Slack error `internal_error`)" in text
    assert "Only responders" not in text and refusal.response_type == "ephemeral"
    assert ibot.actions.runs["verify"] == 0


async def test_someone_outside_a_readable_group_is_still_told_only_responders_may(ibot: IncidentBot) -> None:
    channel = await declare(ibot.bot)
    await ibot.bot.slack.block_action(RUN + "verify", user_id="U0MALLORY", channel_id=channel)
    refusal = await ibot.fake.wait_for_response(lambda r: "Only responders" in str(r.text))
    assert "membership" not in str(refusal.text)
