"""pytest fixtures for the Slack stand-in; import them into a conftest.py to use them.

    from tests.sandbox.fixtures import fake_slack, make_events_client  # noqa: F401

Function-scoped async fixtures, so they run on pytest-asyncio's per-test loop (auto mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio

from bot.sandbox.standin.client import SlackEventsClient
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.sandbox.standin.server import serve_asgi

EventsClientFactory = Callable[[str, str], SlackEventsClient]


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A FakeSlack served on 127.0.0.1; `.url` and `.api_url` point at it."""
    standin = FakeSlack()
    async with serve_asgi(standin.app) as url:
        standin.url = url
        yield standin
        standin.release_holds()


@pytest_asyncio.fixture
async def make_events_client(fake_slack: FakeSlack) -> AsyncIterator[EventsClientFactory]:
    """`make_events_client(bot_base_url, signing_secret)` → SlackEventsClient, closed after the test."""
    clients: list[SlackEventsClient] = []

    def make(base_url: str, signing_secret: str) -> SlackEventsClient:
        client = SlackEventsClient(base_url, signing_secret, fake_slack)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
