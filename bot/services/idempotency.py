"""Idempotent requests: a caller that retries (CI after a timeout) gets what its first attempt
created, not a second one.

The key is claimed in the database *before* the work runs and resolved to the created id after
it, on every replica alike (insert-or-ignore). The work runs in its own unit of work (the
service's), so claim, work and resolve are three transactions, and this is what each gap means:

- the work is refused or fails: the claim is released, and the same key may be used again;
- a retry arrives while the first attempt works: `KeyPending` (retry in a moment);
- the process stops between the work's commit and the resolve: the key stays unresolved, and
  after `LEASE` a retry hears that the first attempt may or may not have created something
  (`KeyPending` with `stale`): never a duplicate, at worst a question to check the listing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.db import idempotency as keys
from bot.db.engine import Database

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=1)  # longer than a create takes, bounded as it is by the database's timeouts


class KeyReused(Exception):
    """The key was used before for a different request."""


@dataclass
class KeyPending(Exception):
    """The request that claimed the key has not finished (or stopped before it could say what it made)."""

    since: datetime
    stale: bool


@dataclass(frozen=True)
class Done:
    result_id: int
    replayed: bool


def digest(request: object) -> str:
    """The request's fingerprint: the same JSON, whatever the order of its keys."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotentRequests:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def run(self, *, scope: str, key: str, request: object, work: Callable[[], Awaitable[int]]) -> Done:
        """`work()`'s id, run once per (scope, key): a retry gets the first id (`replayed`)."""
        fingerprint = digest(request)
        async with self._db.unit_of_work() as session:
            claimed = await keys.claim(session, scope=scope, key=key, digest=fingerprint, at=self._clock.now())
        if not claimed:
            return await self._earlier(scope, key, fingerprint)
        try:
            result_id = await work()
        except BaseException:
            await self._release(scope, key)
            raise
        try:
            async with self._db.unit_of_work() as session:
                await keys.resolve(session, scope=scope, key=key, result_id=result_id)
        except Exception as exc:  # the work is done and stays done; a retry is told to check
            log.warning("idempotency key %s of %s was not resolved to #%s: %s", key, scope, result_id, exc)
        return Done(result_id, replayed=False)

    async def _earlier(self, scope: str, key: str, fingerprint: str) -> Done:
        async with self._db.reader() as session:
            row = await keys.find(session, scope=scope, key=key)
        if row is None:  # released between our claim and our look: the first attempt was refused
            raise KeyPending(self._clock.now(), stale=False)
        if row.digest != fingerprint:
            raise KeyReused(key)
        if row.result_id is None:
            raise KeyPending(row.claimed_at, stale=self._clock.now() - row.claimed_at > LEASE)
        return Done(row.result_id, replayed=True)

    async def _release(self, scope: str, key: str) -> None:
        try:
            async with self._db.unit_of_work() as session:
                await keys.release(session, scope=scope, key=key)
        except Exception as exc:  # the key stays claimed: a retry hears "pending", then "stale"
            log.warning("idempotency key %s of %s could not be released: %s", key, scope, exc)
