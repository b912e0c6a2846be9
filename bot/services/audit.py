"""The audit log as a service: record, read, export, verify. No transport types here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.db import audit as chain
from bot.db.audit import AuditEntry, ChainVerification
from bot.db.engine import Database

CONFIG_LOADED = "config.loaded"


class _Unchanged(Exception):
    """Rolls back a config entry that would repeat the previous one."""


class AuditLog:
    """Append-only, hash-chained record of everything guardrail and its users did."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(self, *, actor: str, action: str, subject: str,
                     details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append one entry in its own transaction (features write theirs inside their own)."""
        async with self._db.unit_of_work() as session:
            return await chain.append_entry(session, at=self._clock.now(), actor=actor, action=action,
                                            subject=subject, details=details)

    async def record_config(self, sha256: str, files: list[str]) -> bool:
        """Write `config.loaded` when the configuration hash differs from the last one recorded.

        The check and the append share one transaction that holds the chain lock, so replicas
        starting together write it once.
        """
        try:
            async with self._db.unit_of_work() as session:
                # Appending first takes the chain lock; then the check cannot race another replica.
                await chain.append_entry(session, at=self._clock.now(), actor="system",
                                         action=CONFIG_LOADED, subject=sha256, details={"files": files})
                previous = await chain.latest(session, 2, action_prefix=CONFIG_LOADED)
                if len(previous) == 2 and previous[0].subject == sha256:
                    raise _Unchanged
        except _Unchanged:
            return False
        return True

    async def latest(self, limit: int) -> list[AuditEntry]:
        async with self._db.reader() as session:
            return await chain.latest(session, limit)

    async def entries(self, *, since: datetime | None = None, subject: str | None = None) -> AsyncIterator[AuditEntry]:
        async with self._db.reader() as session:
            async for entry in chain.iterate(session, since=since, subject=subject):
                yield entry

    async def verify(self) -> ChainVerification:
        async with self._db.reader() as session:
            return await chain.verify_chain(session)
