"""Incident tables and the queries the incident service needs.

`incident` is one row per declared incident. `incident_step` holds one row per (incident,
step key) — the step id, or `<step id>:undo` for its undo — with the state of its latest
run. A run is claimed with a conditional UPDATE (`WHERE attempt = :seen AND status <> 'running'`):
whichever click, replica or redelivery gets there first moves `attempt` on, and every other
copy of the same click then matches no row. That is the exactly-once guarantee.

A running step holds a lease (`lease_owner`, `lease_until`) that its process renews every few
seconds. When the lease runs out the process is gone (killed, crashed, lost the database for
good): `interrupt_expired` marks the run interrupted, again with a conditional UPDATE, so of all
the replicas sweeping at once exactly one does it — and nothing ever re-runs it by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, ColumnElement, Text, UniqueConstraint, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.db.types import UTCDateTime
from bot.db.upsert import insert_ignoring_conflict

OPEN = "open"
RESOLVED = "resolved"

NOT_RUN = "not_run"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
REFUSED = "refused"
INTERRUPTED = "interrupted"  # its process died mid-run: the action may or may not have happened

# A run claimed before leases existed (no `lease_until`) counts as dead this long after it started
# (the old 15-minute step deadline plus a minute).
UNLEASED_GRACE = timedelta(minutes=16)


class IncidentRecord(SQLModel, table=True):
    __tablename__ = "incident"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    severity: str = Field(max_length=10)
    status: str = Field(max_length=20, index=True)
    commander: str = Field(max_length=100)
    playbook: str | None = Field(default=None, max_length=100)
    declared_in: str | None = Field(default=None, max_length=40)
    channel_id: str | None = Field(default=None, max_length=40, index=True)
    channel_name: str | None = Field(default=None, max_length=80)
    header_ts: str | None = Field(default=None, max_length=40)
    freeze_id: int | None = Field(default=None)
    playbook_ts: str | None = Field(default=None, max_length=40)
    declared_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    resolved_by: str | None = Field(default=None, max_length=100)
    summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class IncidentStepRecord(SQLModel, table=True):
    __tablename__ = "incident_step"
    __table_args__ = (UniqueConstraint("incident_id", "step_key", name="uq_incident_step"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    step_key: str = Field(max_length=120)
    status: str = Field(default=NOT_RUN, max_length=20)
    attempt: int = Field(default=0)
    actor: str | None = Field(default=None, max_length=100)
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    succeeded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    remembered: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    lease_owner: str | None = Field(default=None, max_length=100)  # the process running it
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


async def get_incident(session: AsyncSession, incident_id: int) -> IncidentRecord | None:
    return await session.get(IncidentRecord, incident_id)


async def incident_in_channel(session: AsyncSession, channel_id: str) -> IncidentRecord | None:
    query = select(IncidentRecord).where(col(IncidentRecord.channel_id) == channel_id)
    return (await session.execute(query.order_by(col(IncidentRecord.id).desc()).limit(1))).scalars().first()


async def open_incidents(session: AsyncSession) -> list[IncidentRecord]:
    query = select(IncidentRecord).where(col(IncidentRecord.status) == OPEN).order_by(col(IncidentRecord.id))
    return list((await session.execute(query)).scalars().all())


async def create_incident(
    session: AsyncSession,
    *,
    title: str,
    severity: str,
    commander: str,
    playbook: str | None,
    declared_in: str | None,
    declared_at: datetime,
) -> IncidentRecord:
    """Insert an open incident; its id is assigned (flushed) before the caller's commit."""
    row = IncidentRecord(
        title=title,
        severity=severity,
        status=OPEN,
        commander=commander,
        playbook=playbook,
        declared_in=declared_in,
        declared_at=declared_at,
    )
    session.add(row)
    await session.flush()
    return row


async def _change(session: AsyncSession, incident_id: int, **values: object) -> IncidentRecord | None:
    row = await session.get(IncidentRecord, incident_id)
    if row is None:
        return None
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    return row


async def set_freeze(session: AsyncSession, *, incident_id: int, freeze_id: int) -> IncidentRecord | None:
    """Remember the freeze `freeze.on_incident` started for the incident."""
    return await _change(session, incident_id, freeze_id=freeze_id)


async def attach_channel(
    session: AsyncSession,
    *,
    incident_id: int,
    channel_id: str,
    channel_name: str,
    header_ts: str | None,
    playbook_ts: str | None,
) -> IncidentRecord | None:
    """Link the incident to its Slack channel and the messages posted there."""
    return await _change(
        session,
        incident_id,
        channel_id=channel_id,
        channel_name=channel_name,
        header_ts=header_ts,
        playbook_ts=playbook_ts,
    )


async def set_playbook_ts(session: AsyncSession, *, incident_id: int, ts: str) -> IncidentRecord | None:
    """Step updates go to this (newest) copy of the playbook message."""
    return await _change(session, incident_id, playbook_ts=ts)


async def resolve_incident(
    session: AsyncSession, *, incident_id: int, actor: str, at: datetime, summary: str | None
) -> IncidentRecord | None:
    """Resolve the incident if it is still open; None when it is not (another resolve won).

    A conditional UPDATE, so two concurrent resolves (two replicas, a double submit) cannot both
    succeed: on PostgreSQL the second waits for the first to commit and then matches no row.
    """
    result = await session.execute(
        update(IncidentRecord)
        .where(col(IncidentRecord.id) == incident_id, col(IncidentRecord.status) == OPEN)
        .values(status=RESOLVED, resolved_at=at, resolved_by=actor, summary=summary)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await session.get(IncidentRecord, incident_id, populate_existing=True)


async def steps_of(session: AsyncSession, incident_id: int) -> dict[str, IncidentStepRecord]:
    query = select(IncidentStepRecord).where(col(IncidentStepRecord.incident_id) == incident_id)
    return {row.step_key: row for row in (await session.execute(query)).scalars().all()}


async def ensure_step(session: AsyncSession, incident_id: int, step_key: str) -> None:
    """Create the step's row if it does not exist yet (concurrent callers are fine)."""
    await insert_ignoring_conflict(
        session,
        IncidentStepRecord,
        {"incident_id": incident_id, "step_key": step_key, "status": NOT_RUN, "attempt": 0},
        conflict_on=["incident_id", "step_key"],
    )


async def claim_step(
    session: AsyncSession,
    *,
    incident_id: int,
    step_key: str,
    seen_attempt: int,
    actor: str,
    at: datetime,
    owner: str,
    lease_until: datetime,
) -> int | None:
    """Atomically start run number `seen_attempt + 1`, leased to `owner`; None when another click
    got there first. A running step is never taken over: only an interrupted one may be run again."""
    result = await session.execute(
        update(IncidentStepRecord)
        .where(
            col(IncidentStepRecord.incident_id) == incident_id,
            col(IncidentStepRecord.step_key) == step_key,
            col(IncidentStepRecord.attempt) == seen_attempt,
            col(IncidentStepRecord.status) != RUNNING,
        )
        .values(
            status=RUNNING,
            attempt=seen_attempt + 1,
            actor=actor,
            started_at=at,
            finished_at=None,
            summary=None,
            lease_owner=owner,
            lease_until=lease_until,
        )
    )
    return seen_attempt + 1 if result.rowcount == 1 else None  # type: ignore[attr-defined]


async def renew_lease(
    session: AsyncSession, *, incident_id: int, step_key: str, attempt: int, owner: str, until: datetime
) -> bool:
    """The heartbeat: extend the lease of run `attempt` if it is still running; False otherwise."""
    result = await session.execute(
        update(IncidentStepRecord)
        .where(
            col(IncidentStepRecord.incident_id) == incident_id,
            col(IncidentStepRecord.step_key) == step_key,
            col(IncidentStepRecord.attempt) == attempt,
            col(IncidentStepRecord.status) == RUNNING,
        )
        .values(lease_owner=owner, lease_until=until)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(IncidentStepRecord.status) == RUNNING,
        or_(
            col(IncidentStepRecord.lease_until) < now,
            and_(
                col(IncidentStepRecord.lease_until).is_(None), col(IncidentStepRecord.started_at) < now - UNLEASED_GRACE
            ),
        ),
    )


async def expired_runs(session: AsyncSession, *, now: datetime) -> list[IncidentStepRecord]:
    """Runs still marked running whose lease ran out: their process is gone."""
    query = select(IncidentStepRecord).where(_expired(now)).order_by(col(IncidentStepRecord.id))
    return list((await session.execute(query)).scalars().all())


async def interrupt_expired(
    session: AsyncSession, *, incident_id: int, step_key: str, attempt: int, now: datetime, summary: str
) -> bool:
    """Mark run `attempt` interrupted if it is still running on an expired lease. True for exactly
    one caller however many replicas try at once (the losers match no row)."""
    result = await session.execute(
        update(IncidentStepRecord)
        .where(
            col(IncidentStepRecord.incident_id) == incident_id,
            col(IncidentStepRecord.step_key) == step_key,
            col(IncidentStepRecord.attempt) == attempt,
            _expired(now),
        )
        .values(status=INTERRUPTED, finished_at=now, summary=summary, lease_until=None)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def finish_step(
    session: AsyncSession,
    *,
    incident_id: int,
    step_key: str,
    attempt: int,
    ok: bool,
    summary: str,
    remembered: str | None,
    at: datetime,
) -> bool:
    """Record how run `attempt` ended; False if that run is no longer the current one.

    An interrupted run still takes its result: it was marked interrupted because its lease ran out
    (the database was away longer than the lease), and the real outcome beats "we don't know".
    """
    values: dict[str, object] = {
        "status": SUCCEEDED if ok else FAILED,
        "finished_at": at,
        "summary": summary,
        "lease_until": None,
    }
    if ok:
        values.update(succeeded_at=at, remembered=remembered)
    result = await session.execute(
        update(IncidentStepRecord)
        .where(
            col(IncidentStepRecord.incident_id) == incident_id,
            col(IncidentStepRecord.step_key) == step_key,
            col(IncidentStepRecord.attempt) == attempt,
            col(IncidentStepRecord.status).in_([RUNNING, INTERRUPTED]),
        )
        .values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def step_row(session: AsyncSession, *, incident_id: int, step_key: str) -> IncidentStepRecord | None:
    query = select(IncidentStepRecord).where(
        col(IncidentStepRecord.incident_id) == incident_id, col(IncidentStepRecord.step_key) == step_key
    )
    return (await session.execute(query)).scalars().first()


async def mark_refused(
    session: AsyncSession, *, incident_id: int, step_key: str, actor: str, reason: str, at: datetime
) -> None:
    """Show a refusal on the step (never over a running or interrupted step: that state must stay
    visible; the attempt counter stays)."""
    await session.execute(
        update(IncidentStepRecord)
        .where(
            col(IncidentStepRecord.incident_id) == incident_id,
            col(IncidentStepRecord.step_key) == step_key,
            col(IncidentStepRecord.status).not_in([RUNNING, INTERRUPTED]),
        )
        .values(status=REFUSED, actor=actor, finished_at=at, summary=reason)
    )
