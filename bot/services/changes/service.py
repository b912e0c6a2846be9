"""Changes: record them (from the deploys API and from polled sources), watch each one, answer
"is it the deploy?", and take the rollback a watch offers — exactly once across replicas.

Recording is an insert-or-ignore on the change's key, in one unit of work with its audit entry and
the watch's first message (outbox), so of every replica and path that sees a change, one records,
audits and announces it. A [Roll back] press (or the automatic countdown) claims the change's
rollback with a compare-and-set, declares an incident for it, and hands back the playbook step
marked `rollback: true`; running that step is the incident playbook's own claim, confirmation,
freeze-override and audit machinery, untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.actions.base import ActionContext
from bot.checks.base import CheckResult, ServiceProber
from bot.clock import Clock
from bot.config import GuardrailConfig
from bot.config.changes import ChangeSource
from bot.db import changes as table
from bot.db import outbox as outbox_table
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.services.access import Responders
from bot.services.changes import payloads
from bot.services.changes.models import (
    Change,
    ChangeKind,
    ChangeProblem,
    CountdownCancelled,
    Discovered,
    Dismissed,
    RecentChange,
    RollbackRefused,
    RollbackStarted,
    WatchEvents,
    WatchStarted,
    WatchStatus,
)
from bot.services.changes.recent import RecentChanges
from bot.services.changes.records import to_change
from bot.services.changes.sources import ChangeFeed
from bot.services.changes.sources.heroku import HerokuReleases
from bot.services.changes.sources.kubernetes import KubernetesRollouts
from bot.services.changes.watch import ChangeWatch, LastResults
from bot.services.incidents.models import Incident
from bot.services.outbox import Outbox, enqueue

log = logging.getLogger(__name__)

AUTO_ACTOR = "guardrail"  # who an automatic rollback is by
POLL_DEADLINE = 15.0  # seconds for one poll of all sources (each is bounded by its policy too)

Listener = Callable[[WatchEvents], Awaitable[None]]


class IncidentDeclarer(Protocol):
    async def declare(
        self, *, title: str, severity: str | None, commander: str, playbook: str | None, declared_in: str | None
    ) -> Incident: ...


class ChangeService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        prober: ServiceProber,
        *,
        breakers: Breakers,
        responders: Responders,
        owner: str,
        outbox: Outbox | None = None,
        incidents: IncidentDeclarer | None = None,
        recent: RecentChanges | None = None,
        secrets: dict[str, str] | None = None,
        endpoints: dict[str, str] | None = None,
        last_results: LastResults | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._responders = responders
        self.outbox = outbox
        self.incidents = incidents
        self._recent = recent or RecentChanges(db, clock, config)
        self.watch = ChangeWatch(db, clock, config, prober, owner=owner, outbox=outbox, last_results=last_results)
        ctx = ActionContext(
            actor="system",
            incident_id=None,
            step_id="changes.poll",
            clock=clock,
            breakers=breakers,
            secrets=secrets or {},
            endpoints=endpoints or {},
        )
        self.feeds: dict[str, tuple[str, ChangeSource, ChangeFeed]] = {}
        for environment, sources in config.changes.sources.items():
            for source in sources:
                key = f"{source.kind}:{environment}:{source.target}"
                self.feeds[key] = (environment, source, _feed(source, ctx))
        self._listeners: list[Listener] = []
        self._background: set[asyncio.Task[None]] = set()
        self._recorded_deploys: set[int] = set()

    @property
    def watch_every(self) -> timedelta:
        return self._config.changes.watch_every

    @property
    def poll_every(self) -> timedelta:
        return self._config.changes.poll_every

    def on_events(self, listener: Listener) -> None:
        """Hear what each tick (and each recording on this replica) did: the Slack layer posts it."""
        self._listeners.append(listener)

    async def _tell(self, events: WatchEvents) -> None:
        if not (events.started or events.rounds or events.verdicts or events.rollbacks):
            return
        for listener in self._listeners:
            try:
                await listener(events)
            except Exception:
                log.exception("telling about the change watch failed")

    # -- recording ----------------------------------------------------------------------------

    async def record(
        self, *, key: str, environment: str, source: str, service: str, found: Discovered, watch: bool = True
    ) -> Change | None:
        """Record a change once (None when it was recorded already); start its watch when `watch`
        and it affects a configured service."""
        now = self._clock.now()
        settings = self._config.changes
        affected = settings.affected(service)
        at = min(found.at, now) if found.at is not None else now
        # New to guardrail is what counts, not the provider's timestamp (its clock is not ours); the
        # deploys sweep only looks back `watch_for`.
        watched = watch and bool(self.watch.known(affected))
        values = {
            "key": key[:300],
            "environment": environment,
            "source": source,
            "kind": found.kind.value,
            "service": service,
            "services": json.dumps(affected),
            "version": found.label[:100],
            "description": found.description[:300] or None,
            "actor": found.actor[:200],
            "at": at,
            "recorded_at": now,
            "watch_status": (WatchStatus.WATCHING if watched else WatchStatus.UNWATCHED).value,
            "watch_until": now + settings.watch_for if watched else None,
        }
        async with self._db.unit_of_work() as session:
            change_id = await table.insert_change(session, values)
            if change_id is None:
                return None
            row = await table.get(session, change_id)
            assert row is not None
            change = to_change(row)
            await append_entry(
                session,
                at=now,
                actor=found.actor[:100],
                action="change.recorded",
                subject=f"change:{change_id}",
                details={
                    "key": change.key,
                    "environment": environment,
                    "source": source,
                    "kind": found.kind.value,
                    "service": service,
                    "services": affected,
                    "version": change.version,
                    "description": change.description,
                    "watched": watched,
                },
            )
            started = WatchStarted(change, settings.watch_for) if watched else None
            if started is not None:
                message_id = await enqueue(
                    session,
                    kind=payloads.STARTED,
                    payload=payloads.started_payload(started),
                    at=now,
                    expires_at=now + settings.watch_for,
                )
                await table.set_values(session, change_id=change_id, values={"message_outbox_id": message_id})
        if started is not None:
            if self.outbox is not None:
                self.outbox.kick()
            self._in_background(self.watch.snapshot(affected), f"changes:baseline:{change.id}")
            await self._tell(WatchEvents(started=[started]))
        return change

    async def deploy_recorded(
        self,
        *,
        deploy_id: int,
        environment: str,
        service: str,
        version: str,
        actor: str,
        at: datetime,
        exemption: bool = False,
    ) -> Change | None:
        """A deploy from `POST /api/v1/deploys` (or the sweep that catches any this missed) as a change."""
        self._recorded_deploys.add(deploy_id)
        description = f"deployed {version}" + (" during a freeze (exemption)" if exemption else "")
        found = Discovered(
            version=deploy_id, label=version, kind=ChangeKind.DEPLOY, description=description, actor=actor, at=at
        )
        return await self.record(
            key=f"deploy:{deploy_id}", environment=environment, source="deploy", service=service, found=found
        )

    def _in_background(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.warning("%s failed", name, exc_info=True)

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for the baselines being taken in the background (tests, shutdown)."""
        while self._background:
            await asyncio.wait(set(self._background))

    # -- polling ------------------------------------------------------------------------------

    async def poll_tick(self) -> list[Change]:
        """Sweep recent deploys and poll every source once (concurrently, bounded); the changes recorded."""
        jobs = [self._sweep_deploys(), *(self._poll(key) for key in self.feeds)]
        outcomes = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), timeout=POLL_DEADLINE)
        recorded: list[Change] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.warning("polling changes failed: %s: %s", type(outcome).__name__, str(outcome)[:200])
            else:
                recorded.extend(outcome)
        return recorded

    async def _sweep_deploys(self) -> list[Change]:
        now = self._clock.now()
        async with self._db.reader() as session:
            rows = await table.deploys_since(session, cutoff=now - self._config.changes.watch_for)
        recorded = []
        for row in rows:
            if row.id is None or row.id in self._recorded_deploys:
                continue
            change = await self.deploy_recorded(
                deploy_id=row.id,
                environment=row.environment,
                service=row.service,
                version=row.version,
                actor=row.actor,
                at=row.at,
                exemption=row.exemption_id is not None,
            )
            if change is not None:
                recorded.append(change)
        return recorded

    async def _poll(self, key: str) -> list[Change]:
        environment, source, feed = self.feeds[key]
        found = await feed.newest()
        if not found:
            return []
        async with self._db.reader() as session:
            seen = await table.cursor(session, key)
        recorded = []
        # Oldest first, so the newest change's watch starts last; on a source's first poll its
        # history is listed ("is it the deploy?") but not watched: it happened before guardrail looked.
        for change in sorted(found, key=lambda d: d.version):
            if seen is not None and change.version <= seen:
                continue
            made = await self.record(
                key=f"{key}:{change.label}",
                environment=environment,
                source=source.kind,
                service=source.name,
                found=change,
                watch=seen is not None,
            )
            if made is not None:
                recorded.append(made)
        async with self._db.unit_of_work() as session:
            await table.advance_cursor(session, key, version=max(d.version for d in found), at=self._clock.now())
        return recorded

    # -- watching -----------------------------------------------------------------------------

    async def watch_tick(self) -> WatchEvents:
        """One round of the watches, then any automatic rollback whose countdown ran out."""
        rounds, verdicts = await self.watch.tick()
        events = WatchEvents(rounds=rounds, verdicts=verdicts)
        if self._config.changes.auto_rollback:
            events.rollbacks.extend(await self._due_rollbacks())
        await self._tell(events)
        return events

    async def _due_rollbacks(self) -> list[RollbackStarted]:
        async with self._db.reader() as session:
            due = [to_change(row) for row in await table.due_auto_rollbacks(session, now=self._clock.now())]
        started = []
        for change in due:
            try:
                outcome = await self.claim_rollback(change.id, actor=AUTO_ACTOR, automatic=True)
            except Exception:
                log.exception("the automatic rollback of change %s failed to start", change.id)
                continue
            if isinstance(outcome, RollbackStarted):
                started.append(outcome)
        return started

    # -- lookups ------------------------------------------------------------------------------

    async def get(self, change_id: int) -> Change | None:
        async with self._db.reader() as session:
            row = await table.get(session, change_id)
        return to_change(row) if row is not None else None

    async def message_of(self, change_id: int) -> tuple[str, str] | None:
        """Where the watch's message is (channel, ts), once the outbox has posted it."""
        async with self._db.reader() as session:
            row = await table.get(session, change_id)
            if row is None or row.message_outbox_id is None:
                return None
            posted = await outbox_table.by_id(session, row_id=row.message_outbox_id)
        if posted is None or not posted.channel or not posted.ts:
            return None
        return posted.channel, posted.ts

    async def recent(
        self,
        services: Sequence[str] | None = None,
        *,
        results: Sequence[CheckResult] = (),
        until: datetime | None = None,
    ) -> list[RecentChange]:
        """See `RecentChanges.recent`."""
        return await self._recent.recent(services, results=results, until=until)

    # -- answers to the alarm -----------------------------------------------------------------

    async def claim_rollback(
        self, change_id: int, *, actor: str, automatic: bool = False
    ) -> RollbackStarted | RollbackRefused:
        """Take this change's rollback (once across replicas and presses) and declare its incident."""
        found = self._config.rollback_step()
        if found is None:
            return RollbackRefused(
                "no_step",
                "No playbook step is marked `rollback: true`, so there is nothing to "
                "run. Roll back by hand, or add `rollback: true` to the rollback step.",
            )
        playbook, step = found
        if not automatic:
            membership = await self._responders.membership(actor)
            if not membership.allowed:
                await self._audit(actor, "change.rollback_refused", change_id, {"reason": "not a responder"})
                return RollbackRefused(
                    "not_responder",
                    "Only responders (`access.responders`) may roll back. Nothing ran; the attempt was recorded.",
                )
        now = self._clock.now()
        async with self._db.unit_of_work() as session:
            row = await table.get(session, change_id)
            if row is None:
                return RollbackRefused("unknown", f"There is no change #{change_id}.")
            if not await table.claim_rollback(session, change_id=change_id, actor=actor, automatic=automatic):
                if automatic:
                    return RollbackRefused("cancelled", "The automatic rollback was cancelled or taken over.")
                return RollbackRefused(
                    "taken",
                    f"The rollback of {row.version} was already started by {row.rollback_by}.",
                    incident_id=row.rollback_incident,
                )
            await append_entry(
                session,
                at=now,
                actor=actor,
                action="change.rollback_claimed",
                subject=f"change:{change_id}",
                details={"version": row.version, "automatic": automatic, "step": step.id, "playbook": playbook.name},
            )
            change = to_change(row)
        if self.incidents is None:
            raise ChangeProblem("incidents are not available in this process")
        title = f"{change.alert_service or change.service} after {change.version}: rolling back"
        try:
            incident = await self.incidents.declare(
                title=title, severity="sev2", commander=actor, playbook=playbook.name, declared_in=None
            )
        except Exception:
            async with self._db.unit_of_work() as session:
                await table.release_rollback(session, change_id=change_id, actor=actor)
            raise
        async with self._db.unit_of_work() as session:
            await table.set_values(session, change_id=change_id, values={"rollback_incident": incident.id})
        return RollbackStarted(change=change, incident=incident, step_id=step.id, actor=actor, automatic=automatic)

    async def cancel_countdown(self, change_id: int, *, actor: str) -> CountdownCancelled | RollbackRefused:
        """Stop an automatic rollback before it starts (anyone may: stopping is the safe direction)."""
        async with self._db.unit_of_work() as session:
            row = await table.get(session, change_id)
            if row is None:
                return RollbackRefused("unknown", f"There is no change #{change_id}.")
            if not await table.cancel_countdown(session, change_id=change_id, actor=actor):
                why = (
                    f"it was already cancelled by {row.auto_cancelled_by}"
                    if row.auto_cancelled_by
                    else f"the rollback already started ({row.rollback_by})"
                    if row.rollback_by
                    else "no automatic rollback was counting down"
                )
                return RollbackRefused("cancelled", f"Nothing to cancel: {why}.")
            await append_entry(
                session,
                at=self._clock.now(),
                actor=actor,
                action="change.auto_rollback_cancelled",
                subject=f"change:{change_id}",
                details={"version": row.version},
            )
            change = to_change(row)
        return CountdownCancelled(change, actor)

    async def dismiss(self, change_id: int, *, actor: str) -> Dismissed | RollbackRefused:
        """ "Not the deploy": recorded (and any automatic rollback stopped)."""
        async with self._db.unit_of_work() as session:
            row = await table.get(session, change_id)
            if row is None:
                return RollbackRefused("unknown", f"There is no change #{change_id}.")
            if not await table.dismiss(session, change_id=change_id, actor=actor):
                return RollbackRefused("dismissed", f"{row.dismissed_by} already said it is not {row.version}.")
            await append_entry(
                session,
                at=self._clock.now(),
                actor=actor,
                action="change.dismissed",
                subject=f"change:{change_id}",
                details={"version": row.version},
            )
            change = to_change(row)
        return Dismissed(change, actor)

    async def _audit(self, actor: str, action: str, change_id: int, details: dict[str, object]) -> None:
        async with self._db.unit_of_work() as session:
            await append_entry(
                session,
                at=self._clock.now(),
                actor=actor,
                action=action,
                subject=f"change:{change_id}",
                details=details,
            )

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()


def _feed(source: ChangeSource, ctx: ActionContext) -> ChangeFeed:
    if source.heroku is not None:
        return HerokuReleases(source.heroku.app, ctx)
    assert source.kubernetes is not None
    return KubernetesRollouts(
        source.kubernetes.namespace, source.kubernetes.deployment, ctx, context=source.kubernetes.context
    )
