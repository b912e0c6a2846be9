"""How much work after `ack()` runs at once, per Bolt app.

Slash commands are acknowledged first and answered after (through `respond()`). Under a burst,
every answer in progress competes with the next acknowledgements for the one event loop; bounding
the answers in progress keeps the loop acknowledging within Slack's 3 s, and the answers queue
behind each other instead. Never hold this around `ack()` itself, nor around `views.open` (its
trigger_id lives 3 s: queued behind other answers it expires).

An answer waits at most `SLOT_WAIT` for a slot, then runs anyway: during an outage the answers in
progress each wait out their own bound (database, Slack retries), and a person must not wait
behind all of them — a late answer beats a lost one, and answers stuck on a silent database use
no event-loop time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary

from slack_bolt.async_app import AsyncApp

POST_ACK_CONCURRENCY = 4
SLOT_WAIT = 5.0  # seconds an answer waits for a slot before running beyond the bound

log = logging.getLogger(__name__)
_limits: WeakKeyDictionary[AsyncApp, asyncio.Semaphore] = WeakKeyDictionary()


@asynccontextmanager
async def after_ack(app: AsyncApp) -> AsyncIterator[None]:
    """A slot among the app's answers in progress: `await ack()`, then `async with after_ack(app): …`.

    Waits at most `SLOT_WAIT` for the slot, then runs without one."""
    limit = _limits.get(app)
    if limit is None:
        limit = _limits[app] = asyncio.Semaphore(POST_ACK_CONCURRENCY)
    try:
        async with asyncio.timeout(SLOT_WAIT):
            await limit.acquire()
    except TimeoutError:
        log.warning("all %d answer slots busy for %gs; answering beyond the bound", POST_ACK_CONCURRENCY, SLOT_WAIT)
        yield
        return
    try:
        yield
    finally:
        limit.release()
