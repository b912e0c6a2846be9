"""Who is still running a step: leases, heartbeats, and the sweep that finds runs whose process died.

A claimed run holds a lease until `now + lease`. While this process executes it (and while it
still tries to record the result), a heartbeat renews the lease every `lease / 6`. A process that
is killed, crashes or loses the database for good stops renewing; once the lease has run out, the
sweep — at start and on a scheduler tick, on every replica — marks the run **interrupted** with a
conditional UPDATE (exactly one replica wins), audits it and tells `on_interrupted` (the incident
service's `RunPoster`: the thread and the playbook message). Nothing re-runs an interrupted step by
itself: the next click must confirm that the previous attempt may already have reached the target.

The sweep never interrupts a run this process is executing, whatever the clock says: only another
process's silence is evidence of death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import GuardrailConfig
from bot.db import incidents as tables
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.services.incidents.models import UNDO_SUFFIX, InterruptedRun
from bot.services.incidents.records import to_incident

log = logging.getLogger(__name__)

Listener = Callable[[InterruptedRun], Awaitable[None]]
RunKey = tuple[int, str, int]  # (incident id, step key, attempt)

DEFAULT_LEASE = timedelta(seconds=30)
# Silence is all the sweep knows: the process may be dead, or alive and cut off from the database.
INTERRUPTED_SUMMARY = (
    "interrupted: its guardrail process went silent (stopped, or lost the database) before it "
    "recorded how this run ended; the action may still be running or may already have reached "
    "its target"
)


def one_line(exc: BaseException) -> str:
    """`OperationalError: connection refused` — the first line only; a driver's message can run long."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class StepLeases:
    """Heartbeats for the runs this process executes; the sweep for everyone else's."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        *,
        owner: str,
        lease: timedelta = DEFAULT_LEASE,
        on_interrupted: Listener | None = None,
    ) -> None:
        """`on_interrupted` hears of each run this replica marked interrupted (committed)."""
        if lease <= timedelta(0):
            raise ValueError("the step lease must be positive")
        self._db = db
        self._clock = clock
        self._config = config
        self.owner = owner
        self.lease = lease
        self._live: Counter[RunKey] = Counter()  # a run may be held twice while its result is handed on
        self._on_interrupted = on_interrupted
        self._skipped: set[RunKey] = set()  # expired runs the sweep could not mark (logged once)

    @property
    def heartbeat(self) -> float:
        """Seconds between renewals: six chances to renew before the lease runs out."""
        return self.lease.total_seconds() / 6

    @property
    def sweep_interval(self) -> float:
        """Seconds between sweeps: a dead run shows as interrupted within lease + this."""
        return max(min(self.lease.total_seconds() / 2, 15.0), 0.5)

    def until(self, now: datetime) -> datetime:
        return now + self.lease

    @contextlib.asynccontextmanager
    async def held(self, incident_id: int, key: str, attempt: int) -> AsyncIterator[None]:
        """Keep the run's lease alive for the duration of the block."""
        run = (incident_id, key, attempt)
        self._live[run] += 1
        beating = asyncio.create_task(self._beat(run), name=f"lease {incident_id}/{key}/{attempt}")
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            self._live[run] -= 1
            if self._live[run] <= 0:
                del self._live[run]

    async def _beat(self, run: RunKey) -> None:
        incident_id, key, attempt = run
        failing = False
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                async with self._db.unit_of_work() as session:
                    held = await tables.renew_lease(
                        session,
                        incident_id=incident_id,
                        step_key=key,
                        attempt=attempt,
                        owner=self.owner,
                        until=self.until(self._clock.now()),
                    )
            except Exception as exc:
                if not failing:  # one line per outage, not one per beat
                    log.warning(
                        "cannot renew the lease of step %s of incident %s (run %d): %s",
                        key,
                        incident_id,
                        attempt,
                        one_line(exc),
                    )
                failing = True
                continue
            if failing:
                log.info("renewed the lease of step %s of incident %s (run %d) again", key, incident_id, attempt)
            failing = False
            if not held:
                # Another replica marked it interrupted while the database was away from us: the
                # result still lands when it comes (finish_step accepts an interrupted run).
                log.warning(
                    "step %s of incident %s (run %d) was marked interrupted while it ran here",
                    key,
                    incident_id,
                    attempt,
                )
                return

    async def sweep(self) -> list[InterruptedRun]:
        """Mark every run whose lease expired (and that this process is not running) interrupted;
        each is audited once across replicas, and `on_interrupted` hears of the ones this call won."""
        now = self._clock.now()
        async with self._db.reader() as session:
            expired = await tables.expired_runs(session, now=now)
        won: list[InterruptedRun] = []
        for row in expired:
            key = (row.incident_id, row.step_key, row.attempt)
            if key in self._live:
                continue
            try:
                found = await self._interrupt(row, now)
            except Exception as exc:  # one bad row must not keep every other dead run "running"
                if key not in self._skipped:  # once per row, not once per sweep
                    log.error(
                        "could not mark step %s of incident %s (run %d) interrupted: %s; skipped",
                        row.step_key,
                        row.incident_id,
                        row.attempt,
                        one_line(exc),
                    )
                self._skipped.add(key)
                continue
            if found is not None:
                won.append(found)
        for run in won:
            log.warning(
                "step %s of incident %s (run %d) was interrupted: its process stopped renewing its lease",
                run.key,
                run.incident.id,
                run.attempt,
            )
            if self._on_interrupted is None:
                continue
            try:
                await self._on_interrupted(run)
            except Exception:
                log.exception("telling about interrupted step %s of incident %s failed", run.key, run.incident.id)
        return won

    async def _interrupt(self, row: tables.IncidentStepRecord, now: datetime) -> InterruptedRun | None:
        async with self._db.unit_of_work() as session:
            if not await tables.interrupt_expired(
                session,
                incident_id=row.incident_id,
                step_key=row.step_key,
                attempt=row.attempt,
                now=now,
                summary=INTERRUPTED_SUMMARY,
            ):
                return None  # another replica got there first, or the result landed meanwhile
            incident_row = await tables.get_incident(session, row.incident_id)
            if incident_row is None:  # rolls the mark back: a run of no incident is nobody's to announce
                raise LookupError(f"incident #{row.incident_id} does not exist")
            incident = to_incident(incident_row)
            undo = row.step_key.endswith(UNDO_SUFFIX)
            step_id = row.step_key.removesuffix(UNDO_SUFFIX)
            playbook = self._config.playbook(incident.playbook) if incident.playbook else None
            step = playbook.step(step_id) if playbook else None
            label = step.label if step is not None else step_id
            await append_entry(
                session,
                at=now,
                actor="system",
                action="incident.step.interrupted",
                subject=incident.subject,
                details={
                    "step": row.step_key,
                    "label": label,
                    "attempt": row.attempt,
                    "started_by": row.actor,
                    "started_at": row.started_at.isoformat() if row.started_at else None,
                    "lease_owner": row.lease_owner,
                    "lease_until": row.lease_until.isoformat() if row.lease_until else None,
                },
            )
        return InterruptedRun(
            incident=incident,
            key=row.step_key,
            label=label,
            attempt=row.attempt,
            actor=row.actor,
            started_at=row.started_at,
            interrupted_at=now,
            undo=undo,
        )
