"""How much work after `ack()` runs at once, per Bolt app.

Slash commands are acknowledged first and answered after (through `respond()`). Under a burst,
every answer in progress competes with the next acknowledgements for the one event loop; bounding
the answers in progress keeps the loop acknowledging within Slack's 3 s, and the answers queue
behind each other instead. Never hold this around `ack()` itself.
"""

from __future__ import annotations

import asyncio
from weakref import WeakKeyDictionary

from slack_bolt.async_app import AsyncApp

POST_ACK_CONCURRENCY = 4

_limits: WeakKeyDictionary[AsyncApp, asyncio.Semaphore] = WeakKeyDictionary()


def after_ack(app: AsyncApp) -> asyncio.Semaphore:
    """The app's bound on answers in progress: `await ack()`, then `async with after_ack(app): …`."""
    limit = _limits.get(app)
    if limit is None:
        limit = _limits[app] = asyncio.Semaphore(POST_ACK_CONCURRENCY)
    return limit
