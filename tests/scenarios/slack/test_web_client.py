"""The bot's Slack Web API client: honours 429 Retry-After, but only a bounded number of times."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError

from bot.sandbox.standin.fake_slack import FakeSlack
from bot.slack.app import create_web_client
from bot.slack.ports import RATE_LIMIT_RETRIES
from tests.support.bot import running_bot


async def test_rate_limited_calls_are_retried_after_retry_after_then_given_up(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        client = create_web_client(bot.runtime)

        fake_slack.rate_limit("chat.postMessage", times=RATE_LIMIT_RETRIES, retry_after=1)
        response = await client.chat_postMessage(channel="C0DEPLOYS", text="hello")
        assert response["ok"]
        assert len(fake_slack.calls_to("chat.postMessage")) == RATE_LIMIT_RETRIES + 1

        fake_slack.reset()
        fake_slack.rate_limit("chat.postMessage", times=RATE_LIMIT_RETRIES + 5, retry_after=1)
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C0DEPLOYS", text="hello")
        assert raised.value.response.status_code == 429
        assert len(fake_slack.calls_to("chat.postMessage")) == RATE_LIMIT_RETRIES + 1
