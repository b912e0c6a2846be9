"""`respond()` in every listener: a click without a response_url is answered through the Web API."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from bot.sandbox.standin import payloads
from tests.support.bot import BotHarness


async def test_a_click_without_response_url_is_answered_ephemerally_in_its_channel(bot: BotHarness) -> None:
    action = {
        "action_id": "freeze.exemption.approve",
        "block_id": "b",
        "value": "not-a-number",
        "type": "button",
        "text": {"type": "plain_text", "text": "Approve"},
        "action_ts": f"{time.time():.6f}",
    }
    message = {"type": "message", "ts": bot.fake.next_ts(), "text": "", "blocks": []}
    payload = payloads.block_actions(
        action,
        team_id="T0TEST",
        user_id="U0CAROL",
        channel_id="C0DEPLOYS",
        message=message,
        trigger_id="1.2.abc",
        response_url="",
    )
    del payload["response_url"]
    response = await bot.slack.raw(
        urlencode({"payload": json.dumps(payload)}).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    call = await bot.fake.wait_for("chat.postEphemeral")
    assert call.args["channel"] == "C0DEPLOYS" and call.args["user"] == "U0CAROL"
    assert call.args["text"] == "That button does not name an exemption."
    assert bot.fake.responses == []
