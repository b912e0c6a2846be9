"""Slack rate-limiting or failing does not slow acknowledgements: the token is verified once, at start.

Bolt's single-workspace authorization called `auth.test` per request until one succeeded, through
the client's 429 policy, so while Slack answered 429 every request waited out `Retry-After` (Slack
redelivers after 3 s) and then Slack saw "Please reinstall this app".
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.workspace import BOT_ID, BOT_USER_ID
from bot.slack.app import create_web_client
from bot.slack.connection import RECHECK_AFTER, SlackConnection
from tests.support.bot import BOT_TOKEN, running_bot

ACK_BOUND = 2.5  # seconds, against Slack's 3
COMMANDS = [("/freeze", "list"), ("/health", ""), ("/audit", "3")] * 3


async def test_acks_stay_fast_while_slack_answers_429_to_every_call(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    fake_slack.rate_limit("*", times=100_000, retry_after=5)
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        took: list[float] = []
        bodies: list[str] = []
        mark = fake_slack.mark()  # replies may come before the last command is sent (nothing waits on announcements)
        for command, text in COMMANDS:
            started = time.monotonic()
            response = await bot.slack.slash(command, text, user_id="U0CAROL")
            took.append(time.monotonic() - started)
            assert response.status_code == 200
            bodies.append(response.text)
        for name in ("freeze", "health", "audit"):
            await fake_slack.wait_for_response(lambda r, name=name: r.name == name, after=mark)  # type: ignore[misc]

    assert max(took) < ACK_BOUND, took
    assert len(fake_slack.calls_to("auth.test")) <= 1, fake_slack.describe_calls()
    seen = bodies + [str(r.body) for r in fake_slack.responses]
    assert not [text for text in seen if "install" in text.lower()]
    assert len([r for r in fake_slack.responses if r.ok]) == len(COMMANDS)


async def test_the_token_is_verified_once_however_many_requests(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        for command, text in COMMANDS:
            await bot.slack.slash(command, text, user_id="U0CAROL")
        await fake_slack.wait_for_response(lambda r: r.name == "audit")
    assert len(fake_slack.calls_to("auth.test")) == 1


async def test_an_unverified_token_is_checked_again_in_the_background_at_most_once_a_minute(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        now = [1000.0]
        connection = SlackConnection(BOT_TOKEN, monotonic=lambda: now[0])
        client = create_web_client(bot.runtime)
        fake_slack.reset()
        fake_slack.rate_limit("auth.test", times=1, retry_after=5)
        await connection.open(client)
        assert connection.identity is None

        for _ in range(5):
            result = connection.authorization(client, enterprise_id=None, team_id="T0TEST", user_id="U0CAROL")
            assert result.bot_token == BOT_TOKEN and result.bot_user_id is None
        await asyncio.sleep(0)
        assert len(fake_slack.calls_to("auth.test")) == 1

        now[0] += RECHECK_AFTER
        connection.authorization(client, enterprise_id=None, team_id="T0TEST", user_id="U0CAROL")
        assert connection.recheck is not None
        await connection.recheck
        result = connection.authorization(client, enterprise_id=None, team_id="T0TEST", user_id="U0CAROL")
        assert result.bot_user_id == fake_slack.bot_user_id
        assert len(fake_slack.calls_to("auth.test")) == 2
        await connection.close()


async def test_twenty_posts_share_one_or_two_connections(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    """One aiohttp session for the Web API client and respond(): keep-alive connections are reused."""
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        start = len(fake_slack.peers)
        for i in range(10):
            await bot.slack.slash("/freeze", f"in {i + 1}d for 1h Window {i}", user_id="U0CAROL")
            await fake_slack.wait_for("chat.postMessage", lambda c, i=i: f"Window {i}" in str(c.args))  # type: ignore[misc]
            await fake_slack.wait_for_response(lambda r, i=i: f"#{i + 1} " in str(r.body))  # type: ignore[misc]
        used = [(what, peer) for what, peer in fake_slack.peers[start:] if what != "auth.test"]
    assert sorted({what for what, _ in used}) == ["chat.postMessage", "response_url"] and len(used) == 20
    assert len({peer for _, peer in used}) <= 2, used


async def test_while_the_token_is_unverified_the_bot_does_not_answer_its_own_messages(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack
) -> None:
    """auth.test failed at start, so Bolt does not know the bot's ids and cannot drop its own
    messages: the bot's own "are we down?" (a post, and a file it shared — no bot_id on that one)
    must not be answered, while a person's still is."""
    fake_slack.fail("auth.test", "internal_error", times=100)
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        mark = fake_slack.mark()
        own = ["1764580000.000100", "1764580000.000200"]
        await bot.slack.message("are we down?", user=BOT_USER_ID, bot_id=BOT_ID, ts=own[0])
        await bot.slack.message(
            "are we down? see the attached graph", user=BOT_USER_ID, subtype="file_share", ts=own[1]
        )
        await bot.slack.message("are we down?", user="U0CAROL", ts="1764580000.000300")
        await fake_slack.wait_for(
            "chat.postMessage", lambda c: c.args.get("thread_ts") == "1764580000.000300", after=mark
        )
        await asyncio.sleep(0.2)  # an absence cannot be awaited: room for answers to the bot's own posts
        answered = [c.args.get("thread_ts") for c in fake_slack.calls_to("chat.postMessage", after=mark)]
    assert not set(own) & set(answered), answered
    assert fake_slack.calls_to("auth.test")[0].error == "internal_error"
