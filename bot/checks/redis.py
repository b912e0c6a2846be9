"""`redis`: healthy when Redis answers PING."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.checks.base import safe_target
from bot.checks.probe import Unhealthy, short
from bot.config import RedisCheck


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client that never retries. The check's own timeout cancels it; the socket timeouts,
    a little longer, are only a backstop so a socket never outlives a cancelled check for long."""
    backstop = timeout + 0.5
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=backstop,
        socket_timeout=backstop,
        retry_on_timeout=False,
        retry=None,
        decode_responses=True,
    )


async def redis_failure(exc: RedisError) -> Unhealthy:
    message = str(exc).strip() or type(exc).__name__
    return Unhealthy(short(message))


class RedisProbe:
    def __init__(self, check: RedisCheck, timeout: float) -> None:
        self.check = check
        self._client = redis_client(check.url, timeout)

    @property
    def target(self) -> str:
        return safe_target(self.check.url)

    async def __call__(self) -> str:
        try:
            pong = await self._client.ping()
        except RedisError as exc:
            raise await redis_failure(exc) from None
        if not pong:
            raise Unhealthy("PING was not answered with PONG")
        return "PONG"

    async def aclose(self) -> None:
        await self._client.aclose()
