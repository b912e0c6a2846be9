"""The Bolt app: one Web API client with bounded retries, redelivery de-duplication, listeners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import deliveries
from bot.runtime import Runtime
from bot.slack import audit, freeze, health, incidents
from bot.slack.directory import SlackUserGroups
from bot.slack.outbox import SlackCourier

log = logging.getLogger(__name__)

# Honour Retry-After on 429 — a rate-limited call was not processed, so repeating it is safe even
# for chat.postMessage — but give up after a few tries rather than queue work behind a rate limit.
# Connection errors are NOT retried here: the request may have reached Slack, and a repeated
# chat.postMessage or conversations.create would act twice.
RATE_LIMIT_RETRIES = 2
WEB_API_TIMEOUT = 10
CLAIM_TIMEOUT = 1.5  # seconds: well inside Slack's 3 s acknowledgement deadline


def create_web_client(runtime: Runtime) -> AsyncWebClient:
    token = runtime.settings.slack_bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token else None,
        base_url=runtime.settings.slack_api_url,
        timeout=WEB_API_TIMEOUT,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


def create_bolt_app(runtime: Runtime) -> AsyncApp:
    secret = runtime.settings.slack_signing_secret
    app = AsyncApp(
        client=create_web_client(runtime),
        signing_secret=secret.get_secret_value() if secret else "",
    )
    app.middleware(_drop_redeliveries(runtime))
    runtime.responders.directory = SlackUserGroups(app.client, runtime.breakers)
    runtime.outbox.courier = SlackCourier(app.client, runtime)
    for feature in (audit, freeze, health, incidents):
        feature.register(app, runtime)
    return app


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
