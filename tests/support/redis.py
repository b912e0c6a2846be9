"""A Redis database for one test: TEST_REDIS_URL (default db 15), flushed before and after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.support.databases import require_service

DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


@contextmanager
def redis_test_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        require_service("Redis", exc)
        raise
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
