"""The Bolt app: one Web API client with bounded retries, the token verified once, redelivery
de-duplication, `respond()` that never crashes, an app-wide error handler, listeners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Runtime
from bot.slack import audit, changes, freeze, health, incidents, ports
from bot.slack.connection import SlackConnection, installed_bot_user
from bot.slack.failures import error_handler
from bot.slack.reply import reply_for

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.5  # seconds: well inside Slack's 3 s acknowledgement deadline


def create_web_client(runtime: Runtime, *, with_token: bool = True) -> AsyncWebClient:
    """A client like the runtime's own (for tests and tools that want a second one)."""
    return ports.create_web_client(runtime.settings, with_token=with_token)


def slack_connection(runtime: Runtime) -> SlackConnection:
    token = runtime.settings.slack_bot_token
    return SlackConnection(token.get_secret_value() if token else None)


def create_bolt_app(runtime: Runtime, connection: SlackConnection | None = None) -> AsyncApp:
    """The Bolt app over the runtime's Slack client, with every feature's listeners."""
    if runtime.slack is None:
        raise ValueError("the runtime was built without Slack (build_runtime(..., slack=True))")
    secret = runtime.settings.slack_signing_secret
    connection = connection or slack_connection(runtime)

    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return connection.authorization(app.client, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

    # With `authorize`, Bolt wants a client without a token (it sets the token per request from the
    # AuthorizeResult); the runtime's client, which the services post with, gets it back afterwards.
    client = runtime.slack.client
    client.token = None
    app = AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "",
        authorize=authorize,
        # `bot/web.py` verifies every HTTP request's signature before Bolt sees it (and answers 401
        # itself); Bolt checking the same HMAC again is a second hash per request for nothing.
        request_verification_enabled=False,
    )
    client.token = connection.token

    async def tell(body: dict[str, Any], context: Any, text: str) -> bool:
        reply = reply_for(body, context, context.get("client") or app.client, connection.session)
        if reply.response_url is None and reply.channel_id is None and reply.user_id:
            reply.channel_id = reply.user_id  # a form opened from nowhere: the person's DMs with the app
            return bool(await reply(text=text, response_type="in_channel"))
        return bool(await reply(text=text, response_type="ephemeral", replace_original=False))

    app.error(error_handler(tell))
    app.middleware(_drop_own_events(connection))
    app.middleware(_replies(connection))
    app.middleware(_drop_redeliveries(runtime))
    for feature in (audit, freeze, health):
        feature.register(app, runtime)
    changes.register(app, runtime, incidents.register(app, runtime))
    return app


def _replies(connection: SlackConnection) -> Callable[..., Awaitable[Any]]:
    """Every listener's `respond` is a `Reply`: the shared HTTP session, and a fallback to the Web API
    when the payload has no response_url."""

    async def middleware(body: dict[str, Any], context: Any, next: Callable[[], Awaitable[None]]) -> None:
        context["respond"] = reply_for(body, context, context.client, connection.session)
        await next()

    return middleware


def _drop_own_events(connection: SlackConnection) -> Callable[..., Awaitable[Any]]:
    """While the token is unverified, acknowledge and drop the bot's own messages (see
    `SlackConnection.own_event`), and give listeners the bot user the event names."""

    async def middleware(
        body: dict[str, Any], context: Any, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if connection.identity is None:
            if connection.own_event(body):
                log.debug("dropping the bot's own event while its token is unverified")
                return BoltResponse(status=200, body="")
            if not context.get("bot_user_id") and (bot_user := installed_bot_user(body)):
                context["bot_user_id"] = bot_user  # so a mention in a message is answered once, as a mention
        await next()
        return None

    return middleware


def _drop_redeliveries(runtime: Runtime) -> Callable[..., Awaitable[Any]]:
    """Events carry an `event_id`; claim it in the database so a retry, or a copy delivered to
    another replica, is acknowledged without being processed twice."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id:
            try:
                first = await asyncio.wait_for(runtime.deliveries.claim(f"event:{event_id}"), CLAIM_TIMEOUT)
            except Exception as exc:
                # Slack wants its acknowledgement within 3 s, or it redelivers: a slow or failing
                # database must not hold the event. Better answered twice than not at all.
                log.warning("could not claim event %s (%s); processing it anyway", event_id, type(exc).__name__)
                first = True
            if not first:
                log.info("dropping redelivered event %s", event_id)
                return BoltResponse(status=200, body="")
        await next()
        return None

    return middleware
