"""'Is it the deploy?': the changes made shortly before now (or before a moment), as health answers,
the incident header and the postmortem list them. A read only, so health and incidents are given it
at construction (the change service itself needs both of them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.checks.base import CheckResult
from bot.clock import Clock
from bot.config import GuardrailConfig
from bot.db import changes as table
from bot.db.engine import Database
from bot.services.changes.models import RecentChange, mark_related
from bot.services.changes.records import to_change

MAX_LISTED = 20


class RecentChanges:
    """`ChangeLookup` over the change table."""

    def __init__(self, db: Database, clock: Clock, config: GuardrailConfig) -> None:
        self._db = db
        self._clock = clock
        self._config = config

    async def recent(
        self,
        services: Sequence[str] | None = None,
        *,
        results: Sequence[CheckResult] = (),
        until: datetime | None = None,
    ) -> list[RecentChange]:
        """Changes within `changes.lookback` before `until` (default now) affecting `services` (all when
        None), newest first; one made within 30 minutes before a service in `results` went down is
        "likely related"."""
        end = until or self._clock.now()
        async with self._db.reader() as session:
            rows = await table.since(session, cutoff=end - self._config.changes.lookback)
        wanted = set(services) if services is not None else None
        changes = [c for c in map(to_change, rows) if c.at <= end and (wanted is None or wanted & set(c.services))]
        return mark_related(changes[:MAX_LISTED], results)
