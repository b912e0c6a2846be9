"""The bot's one link to Slack: a shared HTTP session, and the bot token verified once at start.

Without a shared session slack_sdk opens (and closes) a TCP connection for every Web API call and
every `respond()`; with one, posts reuse pooled keep-alive connections.

Bolt's single-workspace mode calls `auth.test` on every request until one succeeds, through the
client's 429 retry policy: while Slack rate-limits, each request waited 5 to 11 s on it (Slack
redelivers after 3 s) and then saw "Please reinstall this app". Here `auth.test` runs once at start,
without retries; its answer is cached for good. If it failed, requests are authorized with the
configured token alone (the bot's own user id unknown) and the check is repeated in the background
at most once per `RECHECK_AFTER` — a request never waits on it.

While unverified, Bolt cannot tell the bot's own messages from anyone else's (its ignore-self-events
middleware compares with the ids auth.test would have given), and the message listener could
answer itself. `own_event` stands in: every event names the bot it is delivered to (its
`authorizations`), and a message carrying a `bot_id` is never a person's question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

VERIFY_TIMEOUT = 5.0  # seconds for the one auth.test at start; serving does not wait longer
RECHECK_AFTER = 60.0  # seconds between background re-checks while the token is unverified
POOL_SIZE = 20  # connections to Slack kept open at most


class SlackConnection:
    """Owns the aiohttp session shared by the Web API client and `respond()`, and the bot identity."""

    def __init__(self, token: str | None, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.token = token
        self.session: aiohttp.ClientSession | None = None
        self.identity: dict[str, Any] | None = None  # auth.test's answer, once it succeeded
        self._monotonic = monotonic
        self._next_check = 0.0
        self._check: asyncio.Task[None] | None = None

    async def open(self, client: AsyncWebClient) -> None:
        """Start the shared session (it must be made inside the running loop) and verify the token."""
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL_SIZE))
        client.session = self.session  # slack_sdk reads it per call; Bolt copies it per request
        await self.verify(client)

    async def close(self) -> None:
        if self._check is not None:
            self._check.cancel()
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def verify(self, client: AsyncWebClient) -> None:
        """One `auth.test`, bounded, never retried; a failure is logged and re-checked later."""
        self._next_check = self._monotonic() + RECHECK_AFTER
        checker = AsyncWebClient(
            token=self.token,
            base_url=client.base_url,
            timeout=int(VERIFY_TIMEOUT),
            session=self.session,
            retry_handlers=[],
        )
        try:
            answer = await asyncio.wait_for(checker.auth_test(), VERIFY_TIMEOUT)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            level = (
                logging.ERROR
                if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked")
                else logging.WARNING
            )
            log.log(
                level,
                "Slack did not verify the bot token (%s); serving with it unverified, checking again within %.0fs",
                error or exc,
                RECHECK_AFTER,
            )
            return
        except Exception as exc:
            log.warning(
                "could not reach Slack to verify the bot token (%s); serving with it unverified, "
                "checking again within %.0fs",
                type(exc).__name__,
                RECHECK_AFTER,
            )
            return
        self.identity = dict(answer.data) if isinstance(answer.data, dict) else {}
        log.info(
            "Slack bot token verified: bot user %s in team %s",
            self.identity.get("user_id"),
            self.identity.get("team_id"),
        )

    def authorization(
        self, client: AsyncWebClient, *, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        """Bolt's AuthorizeResult from the cached identity; never waits on Slack."""
        identity = self.identity
        if identity is None:
            self._recheck_later(client)
            identity = {}
        return AuthorizeResult(
            enterprise_id=identity.get("enterprise_id") or enterprise_id,
            team_id=identity.get("team_id") or team_id,
            bot_token=self.token,
            bot_id=identity.get("bot_id"),
            bot_user_id=identity.get("user_id"),
            user_id=user_id,
        )

    def own_event(self, body: dict[str, Any]) -> bool:
        """While the token is unverified: whether `body` is a message or mention the bot itself (or
        any bot) sent, which Bolt's ignore-self-events cannot see without the bot's ids."""
        if self.identity is not None or body.get("type") != "event_callback":
            return False
        event = body.get("event")
        if not isinstance(event, dict) or event.get("type") not in ("message", "app_mention"):
            return False
        if event.get("bot_id"):
            return True
        user = event.get("user")
        return user is not None and user == installed_bot_user(body)

    @property
    def recheck(self) -> asyncio.Task[None] | None:
        """The background re-check of the token, if one was started (tests await it)."""
        return self._check

    def _recheck_later(self, client: AsyncWebClient) -> None:
        if self._monotonic() < self._next_check or (self._check is not None and not self._check.done()):
            return
        self._check = asyncio.create_task(self.verify(client), name="slack-auth-recheck")


def installed_bot_user(body: dict[str, Any]) -> str | None:
    """The bot user an event is delivered to, from its `authorizations` (None when not named)."""
    for entry in body.get("authorizations") or ():
        if isinstance(entry, dict) and entry.get("is_bot") and isinstance(entry.get("user_id"), str):
            return str(entry["user_id"])
    return None
