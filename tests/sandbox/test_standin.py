"""Tests of the Slack stand-in itself, driven by the real slack_sdk AsyncWebClient and Bolt.

If these pass, a bot test failing against the stand-in is about the bot, not the fake.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import pytest_asyncio
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import DEFAULT_TOKEN, AmbiguousWait, FakeSlack
from bot.sandbox.standin.recorder import BEGINNING
from bot.sandbox.standin.server import serve_asgi

SECRET = "test-signing-secret"


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


@pytest.fixture
def web(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=DEFAULT_TOKEN, base_url=fake_slack.api_url)


async def expect_error(coro: Any, error: str) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    assert info.value.response["error"] == error, info.value.response.data
    return info.value


# -- Web API ------------------------------------------------------------------------------------


async def test_post_message_is_answered_like_slack_and_recorded(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    blocks = [
        section("Deploy *api* failed"),
        {"type": "actions", "elements": [button("rollback", "Roll back")]},
    ]
    first = await web.chat_postMessage(channel="C0GENERAL", text="deploy failed", blocks=blocks)
    reply = await web.chat_postMessage(channel="#general", text="details", thread_ts=first["ts"])

    assert first["ok"] and first["channel"] == "C0GENERAL"
    assert first["ts"] == "1700000000.000100" and reply["ts"] == "1700000000.000200"
    assert first["message"]["bot_id"] == "B0BOT" and first["message"]["user"] == "U0BOT"
    assert reply["channel"] == "C0GENERAL" and reply["message"]["thread_ts"] == first["ts"]
    call = fake_slack.calls_to("chat.postMessage")[0]
    assert call.ok and call.args["blocks"] == blocks and call.token == DEFAULT_TOKEN
    assert "Roll back" in blocks_text(call.args["blocks"])
    history = fake_slack.messages_in("general")
    assert [m["ts"] for m in history] == [first["ts"], reply["ts"]]
    assert history[0]["reply_count"] == 1


async def test_blocks_sent_as_form_json_string_are_decoded(fake_slack: FakeSlack) -> None:
    async with httpx.AsyncClient() as http:
        data = {"channel": "C0GENERAL", "blocks": json.dumps([section("hi")]), "token": DEFAULT_TOKEN}
        resp = await http.post(f"{fake_slack.api_url}chat.postMessage", data=data)
    assert resp.json()["ok"] is True
    assert fake_slack.calls[-1].args["blocks"] == [section("hi")]
    assert "token" not in fake_slack.calls[-1].args


async def test_bad_or_missing_token(fake_slack: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    await expect_error(bad.auth_test(), "invalid_auth")
    await expect_error(AsyncWebClient(base_url=fake_slack.api_url).auth_test(), "not_authed")
    assert [c.error for c in fake_slack.calls] == ["invalid_auth", "not_authed"]


async def test_auth_test_and_unknown_method(web: AsyncWebClient) -> None:
    me = await web.auth_test()
    assert (me["team_id"], me["user_id"], me["bot_id"]) == ("T0TEST", "U0BOT", "B0BOT")
    await expect_error(web.api_call("chat.postMesage"), "unknown_method")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_block_limits(web: AsyncWebClient) -> None:
    fifty = [section(f"line {i}") for i in range(50)]
    assert (await web.chat_postMessage(channel="C0GENERAL", text="x", blocks=fifty))["ok"]
    err = await expect_error(
        web.chat_postMessage(channel="C0GENERAL", text="x", blocks=[*fifty, section("one too many")]),
        "invalid_blocks",
    )
    assert "no more than 50 items" in err.response["response_metadata"]["messages"][0]
    await expect_error(web.chat_postMessage(channel="C0GENERAL", text="x" * 40_001), "msg_too_long")
    await expect_error(web.chat_postMessage(channel="C0GENERAL", blocks=[section("x" * 3001)]), "invalid_blocks")
    long_button = {"type": "actions", "elements": [button("a", "b" * 76)]}
    await expect_error(web.chat_postMessage(channel="C0GENERAL", blocks=[long_button]), "invalid_blocks")
    await expect_error(web.chat_postMessage(channel="C0GENERAL"), "no_text")
    await expect_error(web.chat_postMessage(channel="", text="x"), "channel_not_found")
    assert (await web.chat_postMessage(channel="C0UNKNOWN", text="x"))["ok"]  # permissive by default


async def test_strict_channels(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    fake_slack.strict_channels = True
    await expect_error(web.chat_postMessage(channel="C0UNKNOWN", text="x"), "channel_not_found")
    assert (await web.chat_postMessage(channel="general", text="x"))["channel"] == "C0GENERAL"


async def test_duplicate_action_id_is_rejected_with_an_explanation(web: AsyncWebClient) -> None:
    blocks = [
        section("a", accessory=button("ack")),
        {"type": "actions", "elements": [button("ack", "Again")]},
    ]
    err = await expect_error(web.chat_postMessage(channel="C0GENERAL", text="x", blocks=blocks), "invalid_blocks")
    messages = err.response["response_metadata"]["messages"]
    assert any('duplicate action_id "ack"' in m and "/blocks/1/elements/0" in m for m in messages)


async def test_view_over_100_blocks_is_rejected(web: AsyncWebClient) -> None:
    title = {"type": "plain_text", "text": "Incident"}
    view = {"type": "modal", "callback_id": "declare", "title": title, "blocks": [section("x")] * 101}
    await expect_error(web.views_open(trigger_id="t.1", view=view), "invalid_blocks")
    opened = await web.views_open(trigger_id="t.1", view={**view, "blocks": [section("ok")]})
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "declare"


async def test_update_delete_and_permalink(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    posted = await web.chat_postMessage(channel="C0GENERAL", text="deploying")
    updated = await web.chat_update(channel="C0GENERAL", ts=posted["ts"], text="deployed")
    assert updated["text"] == "deployed" and fake_slack.messages_in("C0GENERAL")[0]["text"] == "deployed"
    link = await web.chat_getPermalink(channel="C0GENERAL", message_ts=posted["ts"])
    assert link["permalink"].endswith("/archives/C0GENERAL/p1700000000000100")
    await expect_error(web.chat_update(channel="C0GENERAL", ts="1.2", text="x"), "message_not_found")
    await web.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    await expect_error(web.chat_delete(channel="C0GENERAL", ts=posted["ts"]), "message_not_found")


async def test_metadata_is_stored_and_returned_by_history_only_when_asked(web: AsyncWebClient) -> None:
    tagged = {"event_type": "guardrail_outbox", "event_payload": {"outbox_id": 7}}
    posted = await web.chat_postMessage(channel="C0GENERAL", text="first", metadata=tagged)
    assert posted["message"]["metadata"] == tagged
    await web.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=posted["ts"])
    for n in range(3):
        await web.chat_postMessage(channel="C0GENERAL", text=f"later {n}")
    plain = await web.conversations_history(channel="C0GENERAL")
    assert [m["text"] for m in plain["messages"]] == ["later 2", "later 1", "later 0", "first"]  # no replies
    assert all("metadata" not in m for m in plain["messages"])
    page = await web.conversations_history(channel="C0GENERAL", limit=3, include_all_metadata=True)
    assert page["has_more"] and [m["text"] for m in page["messages"]] == ["later 2", "later 1", "later 0"]
    rest = await web.conversations_history(
        channel="C0GENERAL", limit=3, include_all_metadata=True, cursor=page["response_metadata"]["next_cursor"]
    )
    assert not rest["has_more"] and rest["messages"][0]["metadata"] == tagged
    await expect_error(
        web.chat_postMessage(channel="C0GENERAL", text="x", metadata={"event_type": "a b", "event_payload": {}}),
        "invalid_metadata_schema",
    )
    await expect_error(
        web.chat_postMessage(channel="C0GENERAL", text="x", metadata={"event_type": "a"}), "invalid_metadata_format"
    )
    private = (await web.conversations_create(name="secret", is_private=True))["channel"]["id"]
    await web.conversations_history(channel=private)  # the bot created it, so it is a member


class CountedTs(str):
    """A ts that counts how often it is compared (a subclass's __eq__ runs whichever side it is on)."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedTs.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_messages_are_found_by_ts_in_constant_time_and_forgotten_when_deleted() -> None:
    fake = FakeSlack()
    for n in range(40_000):  # a reminder benchmark's worth of posts: linear scans made this quadratic
        fake.add_message("C0DEPLOYS", {"ts": fake.next_ts(), "text": f"post {n}"})
    history = fake.messages_in("C0DEPLOYS")
    probes = [CountedTs(m["ts"]) for m in history[-1000:]]
    found = [fake.find_message("C0DEPLOYS", ts) for ts in probes]
    # Counted, not timed: an index compares each probe about once, a scan compares it with thousands.
    assert CountedTs.comparisons <= 2 * len(probes), CountedTs.comparisons
    assert [m["text"] for m in found if m] == [f"post {n}" for n in range(39_000, 40_000)]
    last = history[-1]
    first_ts = fake.messages_in("C0DEPLOYS")[0]["ts"]
    fake.add_message("C0DEPLOYS", {"ts": first_ts, "text": "a retry"})  # same ts: ignored
    assert fake.find_message("C0DEPLOYS", first_ts)["text"] == "post 0"  # type: ignore[index]
    assert fake.find_message("C0GENERAL", first_ts) is None and fake.find_message("C0DEPLOYS", None) is None
    fake.remove_message("C0DEPLOYS", first_ts)
    assert fake.find_message("C0DEPLOYS", first_ts) is None and len(fake.messages_in("C0DEPLOYS")) == 39_999
    fake.reset()
    assert fake.find_message("C0DEPLOYS", last["ts"]) is None


async def test_conversations_create_name_rules(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    await expect_error(web.conversations_create(name="Inc-42"), "invalid_name_specials")
    await expect_error(web.conversations_create(name="inc 42"), "invalid_name_specials")
    await expect_error(web.conversations_create(name="i" * 81), "invalid_name_maxlength")
    created = await web.conversations_create(name="inc-42_db")
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["name"] == "inc-42_db" and channel["is_channel"]
    await expect_error(web.conversations_create(name="inc-42_db"), "name_taken")
    assert channel["id"] in fake_slack.channels


async def test_conversations_invite_members_and_info(web: AsyncWebClient) -> None:
    channel = (await web.conversations_create(name="inc-1"))["channel"]["id"]
    await web.conversations_invite(channel=channel, users=["U0ALICE", "U0BOB"])
    await expect_error(web.conversations_invite(channel=channel, users="U0ALICE,U0BOB"), "already_in_channel")
    await expect_error(web.conversations_invite(channel="C0NOPE", users="U0ALICE"), "channel_not_found")
    members = await web.conversations_members(channel=channel)
    assert members["members"] == ["U0BOT", "U0ALICE", "U0BOB"]
    info = await web.conversations_info(channel=channel, include_num_members=True)
    assert info["channel"]["num_members"] == 3


async def test_users_and_usergroups(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    fake_slack.users["U0BOB"] = {"name": "bob", "tz": "America/New_York"}
    fake_slack.usergroups["S0ONCALL"] = ["U0BOB"]
    alice = (await web.users_info(user="U0ALICE"))["user"]
    assert alice["tz"] == "Europe/Berlin" and alice["tz_offset"] in (3600, 7200)
    assert (await web.users_info(user="U0BOB"))["user"]["tz"] == "America/New_York"
    assert (await web.usergroups_users_list(usergroup="S0ONCALL"))["users"] == ["U0BOB"]
    await expect_error(web.usergroups_users_list(usergroup="S0NONE"), "no_such_subteam")


async def test_ratelimit_is_honoured_by_slack_sdk_retry_handler(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    web = AsyncWebClient(
        token=DEFAULT_TOKEN,
        base_url=fake_slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    resp = await web.chat_postMessage(channel="C0GENERAL", text="after the limit")
    assert resp["ok"] and time.monotonic() - started >= 1.0
    calls = fake_slack.calls_to("chat.postMessage")
    assert [(c.status, c.error) for c in calls] == [(429, "ratelimited"), (200, None)]


async def test_ratelimit_without_retry_surfaces_retry_after(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    fake_slack.rate_limit("users.info", retry_after=7)
    err = await expect_error(web.users_info(user="U0ALICE"), "ratelimited")
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "7"
    assert (await web.users_info(user="U0ALICE"))["ok"]


async def test_ratelimit_every_method_and_which_connection_carried_each_call(
    fake_slack: FakeSlack, web: AsyncWebClient
) -> None:
    fake_slack.rate_limit("*", times=2, retry_after=5)
    await expect_error(web.auth_test(), "ratelimited")
    await expect_error(web.chat_postMessage(channel="C0GENERAL", text="x"), "ratelimited")
    assert (await web.users_info(user="U0ALICE"))["ok"]
    assert [method for method, _ in fake_slack.peers] == ["auth.test", "chat.postMessage", "users.info"]
    assert all(peer is not None and peer[0] == "127.0.0.1" for _, peer in fake_slack.peers)


async def test_fail_and_delay(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    fake_slack.fail("chat.postMessage", "channel_is_archived", times=2)
    for _ in range(2):
        await expect_error(web.chat_postMessage(channel="C0GENERAL", text="x"), "channel_is_archived")
    fake_slack.delay("auth.test", 0.2)
    started = time.monotonic()
    await web.auth_test()
    assert time.monotonic() - started >= 0.2
    assert (await web.chat_postMessage(channel="C0GENERAL", text="x"))["ok"]


async def test_wait_for_recorded_future_and_timeout(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    await web.chat_postMessage(channel="C0GENERAL", text="already here")
    earlier = await fake_slack.wait_for("chat.postMessage")
    assert earlier.args["text"] == "already here"

    later = asyncio.create_task(web.chat_postMessage(channel="C0GENERAL", text="later"))
    call = await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "later", timeout=5)
    assert call.args["text"] == "later"
    await later

    with pytest.raises(AssertionError, match="already here"):
        await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "never", timeout=0.05)


async def test_wait_after_a_mark_sees_only_newer_calls(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    await web.chat_postMessage(channel="C0GENERAL", text="deploy started")
    mark = fake_slack.mark()
    later = asyncio.create_task(web.chat_postMessage(channel="C0GENERAL", text="deploy started"))
    call = await fake_slack.wait_for("chat.postMessage", lambda c: "started" in c.args["text"], after=mark)
    assert call is fake_slack.calls[-1] and call is not fake_slack.calls[0]
    await later

    with pytest.raises(AssertionError, match=r"no successful chat\.postMessage call after Mark"):
        await fake_slack.wait_for("chat.postMessage", timeout=0.05, after=fake_slack.mark())
    assert [c.args["text"] for c in fake_slack.calls_to("chat.postMessage", after=mark)] == ["deploy started"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    first = await fake_slack.wait_for("chat.postMessage", after=BEGINNING)
    assert first is fake_slack.calls[0]


async def test_a_mark_stays_valid_across_reset(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    await web.auth_test()
    mark = fake_slack.mark()
    fake_slack.reset()
    await web.chat_postMessage(channel="C0GENERAL", text="after the reset")
    assert (await fake_slack.wait_for("chat.postMessage", after=mark)).args["text"] == "after the reset"
    assert fake_slack.calls_to("chat.postMessage", after=mark) == fake_slack.calls


async def test_hold_applies_a_call_but_delays_its_answer(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    gate = fake_slack.hold("chat.postMessage")
    task = asyncio.create_task(web.chat_postMessage(channel="C0GENERAL", text="held"))
    call = await fake_slack.wait_for("chat.postMessage", after=BEGINNING)
    assert fake_slack.messages_in("C0GENERAL")[-1]["text"] == "held" and not task.done()
    assert (await web.chat_postMessage(channel="C0GENERAL", text="not held"))["ok"]  # only the next call
    gate.set()
    assert (await task)["ts"] == call.response["ts"]

    picky = fake_slack.hold("chat.postMessage", lambda c: c.args.get("text") == "second")
    assert (await web.chat_postMessage(channel="C0GENERAL", text="first"))["ok"]  # does not match: answered
    second = asyncio.create_task(web.chat_postMessage(channel="C0GENERAL", text="second"))
    await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "second")
    assert not second.done()
    picky.set()
    assert (await second)["ok"]

    fake_slack.hold("auth.test")
    stuck = asyncio.create_task(web.auth_test())
    await fake_slack.wait_for("auth.test")
    fake_slack.release_holds()  # what the fixture does at the end of a test
    assert (await stuck)["ok"]


@pytest_asyncio.fixture
async def replier(fake_slack: FakeSlack) -> AsyncIterator[SlackEventsClient]:
    """An events client pointed at an app that answers every request with the same message, posted
    after a short pause, and the same response_url post."""
    web = AsyncWebClient(token=DEFAULT_TOKEN, base_url=fake_slack.api_url)
    tasks: list[asyncio.Task[None]] = []

    async def reply(response_url: str) -> None:
        await asyncio.sleep(0.05)  # the answer arrives after the request returned, like a Bolt listener's
        await web.chat_postMessage(channel="C0GENERAL", text="on it")
        async with httpx.AsyncClient() as http:
            await http.post(response_url, json={"text": "on it"})

    async def handle(request: Request) -> PlainTextResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        tasks.append(asyncio.create_task(reply(form["response_url"])))
        return PlainTextResponse("")

    app = Starlette(routes=[Route("/slack/events", handle, methods=["POST"])])
    async with serve_asgi(app) as url, SlackEventsClient(url, SECRET, fake_slack) as client:
        yield client
    await asyncio.gather(*tasks)


async def test_waits_after_an_action_ignore_what_earlier_actions_caused(
    fake_slack: FakeSlack, replier: SlackEventsClient
) -> None:
    await replier.slash("/deploy", "api")
    first = await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "on it")
    first_response = await fake_slack.wait_for_response(lambda r: r.text == "on it")

    await replier.slash("/deploy", "api")  # same answer again: only the new one may satisfy the wait
    second = await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "on it")
    second_response = await fake_slack.wait_for_response(lambda r: r.text == "on it")
    assert second is not first and second_response is not first_response
    assert fake_slack.calls_to("chat.postMessage")[-1] is second
    assert second_response.name == "deploy" and fake_slack.responses[-1] is second_response
    assert fake_slack.responses_after(fake_slack.last_action) == [second_response]


async def test_with_two_clients_the_default_cursor_refuses_and_each_client_keeps_its_own(
    fake_slack: FakeSlack, replier: SlackEventsClient
) -> None:
    """Two replicas, one stand-in: B's request would move the shared cursor past what A caused, so a
    wait without `after=` is refused; each client's `last_action` (or a mark) says which is meant."""
    async with SlackEventsClient(str(replier.http.base_url), SECRET, fake_slack) as other:
        await replier.slash("/deploy", "api")
        mine = replier.last_action
        await other.slash("/deploy", "web")
        with pytest.raises(AmbiguousWait):
            await fake_slack.wait_for("chat.postMessage")
        with pytest.raises(AmbiguousWait):
            await fake_slack.wait_for_response()
        assert other.last_action.calls >= mine.calls
        posts = [await fake_slack.wait_for("chat.postMessage", after=mark) for mark in (mine, other.last_action)]
        assert all(p.args["text"] == "on it" for p in posts)
    await replier.slash("/deploy", "api")  # the other client is closed: the default is unambiguous again
    await fake_slack.wait_for_response(lambda r: r.text == "on it")


async def test_response_url_posts_are_recorded(fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url("deploy")
    async with httpx.AsyncClient() as http:
        resp = await http.post(url, json={"text": "Rolled back", "replace_original": True})
        bad = await http.post(url, json={"blocks": [section("x" * 3001)]})
    assert (resp.status_code, resp.text) == (200, "ok") and bad.status_code == 400
    post = await fake_slack.wait_for_response(lambda r: r.replace_original)
    assert post.name == "deploy" and post.text == "Rolled back" and post.response_type == "ephemeral"


async def test_reset_forgets_everything(fake_slack: FakeSlack, web: AsyncWebClient) -> None:
    await web.conversations_create(name="inc-9")
    fake_slack.fail("auth.test")
    fake_slack.reset()
    assert fake_slack.calls == [] and fake_slack.channel_by_name("inc-9") is None
    assert (await web.auth_test())["ok"]


# -- signed requests ----------------------------------------------------------------------------


Seen = list[tuple[dict[str, str], bytes]]


@pytest_asyncio.fixture
async def echo(fake_slack: FakeSlack) -> AsyncIterator[tuple[SlackEventsClient, Seen]]:
    """An events client pointed at a tiny app that keeps each request's headers and body."""
    seen: Seen = []

    async def keep(request: Request) -> PlainTextResponse:
        seen.append((dict(request.headers), await request.body()))
        return PlainTextResponse("")

    app = Starlette(routes=[Route("/slack/events", keep, methods=["POST"])])
    async with serve_asgi(app) as url, SlackEventsClient(url, SECRET, fake_slack) as client:
        yield client, seen


async def test_signature_verifies_with_slack_sdk(echo: tuple[SlackEventsClient, Seen]) -> None:
    client, seen = echo
    await client.slash("/deploy", "api prod")
    await client.message("hello", retry_num=1)
    await client.raw(b"{}", {"Content-Type": "application/json"}, timestamp=int(time.time()) - 301)
    verifier = SignatureVerifier(SECRET)

    (slash_headers, slash_body), (msg_headers, msg_body), (stale_headers, stale_body) = seen
    assert verifier.is_valid_request(slash_body, slash_headers)
    assert verifier.is_valid_request(msg_body, msg_headers)
    assert not verifier.is_valid_request(stale_body, stale_headers)  # over 5 minutes old
    assert not SignatureVerifier("other-secret").is_valid_request(msg_body, msg_headers)
    assert slash_headers["content-type"] == "application/x-www-form-urlencoded"
    assert msg_headers["content-type"] == "application/json"
    assert (msg_headers["x-slack-retry-num"], msg_headers["x-slack-retry-reason"]) == ("1", "http_timeout")
    assert json.loads(msg_body)["event"]["text"] == "hello"


async def test_end_to_end_through_bolt(fake_slack: FakeSlack) -> None:
    """A real Bolt app: slash command → postMessage with a button → click → respond via response_url."""
    bolt = AsyncApp(client=AsyncWebClient(token=DEFAULT_TOKEN, base_url=fake_slack.api_url), signing_secret=SECRET)

    @bolt.command("/deploy")
    async def deploy(ack: Any, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        blocks = [section(f"Deploying {command['text']}", accessory=button("rollback", "Roll back", "42"))]
        await client.chat_postMessage(channel=command["channel_id"], text="Deploying", blocks=blocks)

    @bolt.action("rollback")
    async def rollback(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(text=f"Rolled back {body['actions'][0]['value']}", replace_original=True)

    @bolt.shortcut("declare")
    async def declare(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        title = {"type": "plain_text", "text": "Declare"}
        field = {"type": "plain_text_input", "action_id": "summary"}
        blocks = [{"type": "input", "block_id": "what", "label": title, "element": field}]
        view = {"type": "modal", "callback_id": "declare", "title": title, "blocks": blocks}
        await client.views_open(trigger_id=body["trigger_id"], view={**view, "private_metadata": "sev1"})

    @bolt.view("declare")
    async def declared(ack: Any, view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        summary = view["state"]["values"]["what"]["summary"]["value"]
        await client.chat_postMessage(channel="C0GENERAL", text=f"{view['private_metadata']}: {summary}")

    @bolt.message("hello")
    async def hello(message: dict[str, Any], say: Any) -> None:
        await say(text=f"hi <@{message['user']}>", thread_ts=message["ts"])

    handler = AsyncSlackRequestHandler(bolt)

    async def endpoint(request: Request) -> Any:
        return await handler.handle(request)

    app = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
    async with serve_asgi(app) as url, SlackEventsClient(url, SECRET, fake_slack) as slack:
        assert (await slack.slash("/deploy", "api")).status_code == 200
        posted = await fake_slack.wait_for("chat.postMessage")
        assert "Roll back" in blocks_text(posted.args["blocks"])
        assert (await slack.block_action("rollback")).status_code == 200
        response = await fake_slack.wait_for_response()
        assert response.text == "Rolled back 42" and response.name == "rollback"
        assert (await slack.shortcut("declare")).status_code == 200
        await fake_slack.wait_for("views.open")
        assert (await slack.view_submission("declare", {"what": {"summary": "db down"}})).status_code == 200
        await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "sev1: db down")

        await slack.message("hello there")
        reply = await fake_slack.wait_for("chat.postMessage", lambda c: c.args["text"] == "hi <@U0ALICE>")
        assert reply.args["thread_ts"] == fake_slack.messages_in("C0GENERAL")[-2]["ts"]

        unsigned = await slack.raw(
            b"command=%2Fdeploy", {"Content-Type": "application/x-www-form-urlencoded"}, sign=False
        )
        assert unsigned.status_code == 401


async def test_a_slash_command_acknowledged_with_a_message_shows_it_like_slack(fake_slack: FakeSlack) -> None:
    """Slack shows the message in a slash command's acknowledgement (ephemeral unless it says
    in_channel): the stand-in records it as a response under the command's name; a message Slack
    would refuse is recorded with Slack's error; an empty acknowledgement records nothing."""
    bolt = AsyncApp(client=AsyncWebClient(token=DEFAULT_TOKEN, base_url=fake_slack.api_url), signing_secret=SECRET)

    @bolt.command("/status")
    async def status(ack: Any, command: dict[str, Any]) -> None:
        if command["text"] == "quiet":
            await ack()
        elif command["text"] == "huge":
            await ack(blocks=[section("x" * 3001)])
        else:
            await ack(text="All up", blocks=[section("*All up*")], response_type="in_channel")

    handler = AsyncSlackRequestHandler(bolt)

    async def endpoint(request: Request) -> Any:
        return await handler.handle(request)

    app = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
    async with serve_asgi(app) as url, SlackEventsClient(url, SECRET, fake_slack) as slack:
        assert (await slack.slash("/status")).status_code == 200
        shown = await fake_slack.wait_for_response(timeout=0.1)
        assert (shown.name, shown.text, shown.response_type, shown.ok) == ("status", "All up", "in_channel", True)
        assert blocks_text(shown.blocks or []) == "*All up*"

        await slack.slash("/status", "huge")
        refused = fake_slack.responses_after(slack.last_action)
        assert [r.error for r in refused] == ["invalid_blocks"]

        await slack.slash("/status", "quiet")
        assert fake_slack.responses_after(slack.last_action) == []
