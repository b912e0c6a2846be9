"""Watching: announce a watched service's state change once it held for `watch_threshold`
consecutive checks (hysteresis, so a flapping service stays quiet), exactly once across replicas.

Each replica counts its own consecutive results. When a streak reaches the threshold (and, while
it lasts, whenever this replica's memory of the database differs) and differs from the state
recorded in the database, the replica claims the change with a compare-and-set in
one unit of work that also writes the audit entry and the announcement (to the outbox, which posts
it and retries until Slack took it); only the claimant writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.checks.base import CheckResult, Status
from bot.clock import Clock
from bot.config import ServiceConfig
from bot.db import audit as audit_chain
from bot.db import health as watch_table
from bot.db.engine import Database
from bot.services.health.models import StateChange
from bot.services.outbox import Outbox
from bot.services.outbox import enqueue as enqueue_message

log = logging.getLogger(__name__)

AUDIT_ACTION = "health.state_changed"
OUTBOX_KIND = "health.changed"


class HealthWatch:
    def __init__(self, db: Database, clock: Clock, *, outbox: Outbox | None = None) -> None:
        self._db = db
        self._clock = clock
        self.outbox = outbox
        self._streaks: dict[str, tuple[Status, int]] = {}
        self._recorded: dict[str, str] = {}  # what this replica last saw in the database

    def _streak(self, result: CheckResult) -> int:
        status, count = self._streaks.get(result.service, (result.status, 0))
        count = count + 1 if status is result.status else 1
        self._streaks[result.service] = (result.status, count)
        return count

    async def observe(self, checked: Sequence[tuple[ServiceConfig, CheckResult]]) -> list[StateChange]:
        """The changes this replica claimed and committed; one service's failure never hides another's."""
        changes = []
        for service, result in checked:
            streak = self._streak(result)
            if streak < service.watch_threshold:
                continue
            # Past the threshold the local memory saves a query per tick; when a streak reaches it,
            # the database decides, since another replica may have recorded a change meanwhile.
            if streak > service.watch_threshold and self._recorded.get(service.name) == result.status.value:
                continue
            try:
                change = await self._claim(result)
            except Exception:
                log.exception("recording the health change of %s failed; the next check retries", service.name)
                self._recorded.pop(service.name, None)  # so the next tick asks the database again
                continue
            if change is not None:
                changes.append(change)
        if self.outbox is not None and any(c.announce for c in changes):
            self.outbox.kick()
        return changes

    async def _claim(self, result: CheckResult) -> StateChange | None:
        now = self._clock.now()
        new = result.status
        async with self._db.unit_of_work() as session:
            old = await watch_table.current_state(session, result.service, now)
            if old == new.value or not await watch_table.claim_change(
                session, result.service, old=old, new=new.value, at=now
            ):
                self._recorded[result.service] = new.value
                return None
            await audit_chain.append_entry(
                session,
                at=now,
                actor="system",
                action=AUDIT_ACTION,
                subject=result.service,
                details={
                    "from": old,
                    "to": new.value,
                    "reason": result.reason,
                    "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 1),
                },
            )
            announce = not (old == watch_table.UNKNOWN and new is Status.UP)
            change = StateChange(result.service, old, new, result, announce)
            if announce:
                await enqueue_message(session, kind=OUTBOX_KIND, payload=change.to_payload(), at=now)
        self._recorded[result.service] = new.value
        return change
