"""Slack's side of the services' outbound ports, built by `bot.runtime.build_runtime` (and only there).

One Web API client serves them all and the Bolt app too: bounded retries (429 only, see
`RATE_LIMIT_RETRIES`), the bot token, and (once the server opens its `SlackConnection`) the shared
HTTP session.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import GuardrailConfig
from bot.resilience import Breakers
from bot.settings import Settings
from bot.slack.audit import SlackAnchorPoster
from bot.slack.directory import SlackUserGroups
from bot.slack.incident_posts import SlackRunPoster
from bot.slack.outbox import SlackCourier
from bot.slack.rollback_check import SlackRedPoster

# Honour Retry-After on 429 — a rate-limited call was not processed, so repeating it is safe even
# for chat.postMessage — but give up after a few tries rather than queue work behind a rate limit.
# Connection errors are NOT retried here: the request may have reached Slack, and a repeated
# chat.postMessage or conversations.create would act twice.
RATE_LIMIT_RETRIES = 2
WEB_API_TIMEOUT = 10


def create_web_client(settings: Settings, *, with_token: bool = True) -> AsyncWebClient:
    token = settings.slack_bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token and with_token else None,
        base_url=settings.slack_api_url,
        timeout=WEB_API_TIMEOUT,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


@dataclass(frozen=True)
class SlackPorts:
    """What the services are given to reach Slack: the group directory (responders), the outbox's
    courier (announcements), and the posters of red rollback checks, audit anchors and the runs
    found interrupted or recorded late."""

    client: AsyncWebClient
    directory: SlackUserGroups
    courier: SlackCourier
    red_poster: SlackRedPoster
    anchor_poster: SlackAnchorPoster
    run_poster: SlackRunPoster


def slack_ports(settings: Settings, config: GuardrailConfig, breakers: Breakers) -> SlackPorts:
    client = create_web_client(settings)
    return SlackPorts(
        client=client,
        directory=SlackUserGroups(client, breakers),
        courier=SlackCourier(client, config, breakers),
        red_poster=SlackRedPoster(client, breakers, config.tz),
        anchor_poster=SlackAnchorPoster(client, breakers),
        run_poster=SlackRunPoster(client, config.tz),
    )
