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
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import deliveries
from bot.runtime import Runtime
from bot.slack import audit, changes, freeze, health, incidents
from bot.slack.connection import SlackConnection, installed_bot_user
from bot.slack.directory import SlackUserGroups
from bot.slack.failures import error_handler
from bot.slack.outbox import SlackCourier
from bot.slack.reply import reply_for
from bot.slack.rollback_check import SlackRedPoster

log = logging.getLogger(__name__)

# Honour Retry-After on 429 — a rate-limited call was not processed, so repeating it is safe even
# for chat.postMessage — but give up after a few tries rather than queue work behind a rate limit.
# Connection errors are NOT retried here: the request may have reached Slack, and a repeated
# chat.postMessage or conversations.create would act twice.
RATE_LIMIT_RETRIES = 2
WEB_API_TIMEOUT = 10
CLAIM_TIMEOUT = 1.5  # seconds: well inside Slack's 3 s acknowledgement deadline


def create_web_client(runtime: Runtime, *, with_token: bool = True) -> AsyncWebClient:
    token = runtime.settings.slack_bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token and with_token else None,
        base_url=runtime.settings.slack_api_url,
        timeout=WEB_API_TIMEOUT,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


def slack_connection(runtime: Runtime) -> SlackConnection:
    token = runtime.settings.slack_bot_token
    return SlackConnection(token.get_secret_value() if token else None)


def create_bolt_app(runtime: Runtime, connection: SlackConnection | None = None) -> AsyncApp:
    secret = runtime.settings.slack_signing_secret
    connection = connection or slack_connection(runtime)

    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return connection.authorization(app.client, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

    # With `authorize`, Bolt wants a client without a token (it sets the token per request from the
    # AuthorizeResult); the app's own client, used for announcements, gets the token afterwards.
    app = AsyncApp(
        client=create_web_client(runtime, with_token=False),
        signing_secret=secret.get_secret_value() if secret else "",
        authorize=authorize,
    )
    app.client.token = connection.token

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
    runtime.responders.directory = SlackUserGroups(app.client, runtime.breakers)
    runtime.outbox.courier = SlackCourier(app.client, runtime)
    for feature in (audit, freeze, health):
        feature.register(app, runtime)
    changes.register(app, runtime, incidents.register(app, runtime))
    runtime.rollbacks.poster = SlackRedPoster(app.client, runtime.breakers, runtime.config.tz)
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

    async def middleware(body: dict[str, Any], context: Any,
                         next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        if connection.identity is None:
            if connection.own_event(body):
                log.debug("dropping the bot's own event while its token is unverified")
                return BoltResponse(status=200, body="")
            if not context.get("bot_user_id") and (bot_user := installed_bot_user(body)):
                context["bot_user_id"] = bot_user   # so a mention in a message is answered once, as a mention
        await next()
        return None

    return middleware


async def _claim(runtime: Runtime, event_id: str) -> bool:
    async with runtime.db.unit_of_work() as session:
        return await deliveries.claim(session, f"event:{event_id}", runtime.clock.now())


def _drop_redeliveries(runtime: Runtime) -> Callable[..., Awaitable[Any]]:
    """Events carry an `event_id`; claim it in the database so a retry, or a copy delivered to
    another replica, is acknowledged without being processed twice."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id:
            try:
                first = await asyncio.wait_for(_claim(runtime, event_id), CLAIM_TIMEOUT)
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
