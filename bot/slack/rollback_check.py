"""The rollback check's Slack face: posts red results in the deploys channel (bot and CLI alike)."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient

from bot.resilience import Breakers, CallPolicy, call_outbound
from bot.services.rollback_check import RollbackCheckReport
from bot.slack.rollback_check_view import render_red

log = logging.getLogger(__name__)

SLACK_CALL = CallPolicy(timeout=10.0)


class SlackRedPoster:
    """Posts a red rollback check; failures are logged and reported as False."""

    def __init__(self, client: AsyncWebClient, breakers: Breakers, tz: ZoneInfo) -> None:
        self._client = client
        self._breakers = breakers
        self._tz = tz

    async def post_red(self, channel: str, report: RollbackCheckReport) -> bool:
        text, rendered = render_red(report, self._tz)
        try:
            await call_outbound(
                "slack:chat.postMessage",
                lambda: self._client.chat_postMessage(channel=channel, text=text, blocks=rendered),
                policy=SLACK_CALL,
                breakers=self._breakers,
            )
        except Exception as exc:
            log.warning("could not post the red rollback check: %s: %s", type(exc).__name__, str(exc)[:200])
            return False
        return True
