"""The watch after a change: a before/after comparison of the affected services, round by round.

Every `watch_every` the scheduler ticks on every replica. A tick leases the open watches (a lease
outlives a few rounds and is renewed by each, so one replica drives them and another takes over
when it dies), probes the union of their services once — fifty watches on `api` cost `api` one
probe per round — and compares each service with its baseline: its status from the rounds just
before the change (this replica's recent probes, or the health answer's last round), else its
status in the watch's first round. A service that is worse than its baseline (down, or slow when it
was up) for `watch_threshold` rounds in a row raises the alarm; a watch that reaches `watch_for`
without one ends "looks healthy". Either verdict is a compare-and-set on the change's row, written
with its audit entry (and, for an alarm, its outbox post) in one unit of work, so it is said once.

Limits: this is a before/after comparison, not traffic splitting. Anything else that changed in
the same minutes (traffic, a dependency) looks the same; a service that was already down at the
change cannot be blamed on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from bot.checks.base import CheckResult, ServiceProber, Status
from bot.clock import Clock
from bot.config import GuardrailConfig
from bot.db import changes as table
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.services.changes import payloads
from bot.services.changes.models import Change, WatchRound, WatchStatus, WatchVerdict
from bot.services.changes.records import WatchState, to_change
from bot.services.outbox import Outbox, enqueue

log = logging.getLogger(__name__)

RANK = {Status.UP.value: 0, Status.SLOW.value: 1, Status.DOWN.value: 2}
LEASE_ROUNDS = 3  # a watch's lease outlives this many rounds
HISTORY = 16  # probes remembered per service (for baselines)
AT_THE_CHANGE = timedelta(seconds=5)

LastResults = Callable[[], Sequence[CheckResult]]


class ChangeWatch:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        prober: ServiceProber,
        *,
        owner: str,
        outbox: Outbox | None = None,
        last_results: LastResults | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._prober = prober
        self.owner = owner
        self.outbox = outbox
        self._last_results = last_results
        self._history: dict[str, deque[tuple[datetime, str]]] = {}
        self.probes: Counter[str] = Counter()  # probes per service (the benchmark's count)
        self.rounds = 0
        self._last_round: datetime | None = None
        self._lock = asyncio.Lock()

    # -- baselines --------------------------------------------------------------------------

    def remember(self, results: Sequence[CheckResult]) -> None:
        for result in results:
            self._history.setdefault(result.service, deque(maxlen=HISTORY)).append(
                (result.checked_at, result.status.value)
            )

    async def snapshot(self, services: Sequence[str]) -> None:
        """Probe `services` now, at the change, so its watch has a baseline from before it could break."""
        wanted = self.known(services)
        if wanted:
            results = await self._prober.probe(wanted)
            self.probes.update(r.service for r in results)
            self.remember(results)

    def known(self, services: Sequence[str]) -> list[str]:
        configured = {s.name for s in self._config.services}
        return sorted({s for s in services if s in configured})

    def _baseline(self, service: str, change: Change) -> str | None:
        """The service's status from just before (or at) the change, if this replica saw it."""
        window = max(self._config.changes.watch_every * 2, timedelta(seconds=30))
        earliest = change.recorded_at - window
        if self._last_results is not None:
            self.remember(
                [
                    r
                    for r in self._last_results()
                    if r.service == service and not any(at == r.checked_at for at, _ in self._history.get(service, ()))
                ]
            )
        # the snapshot taken right after recording lands a moment after `recorded_at`: still "at the change"
        latest = change.recorded_at + AT_THE_CHANGE
        seen = [(at, status) for at, status in self._history.get(service, ()) if earliest <= at <= latest]
        return max(seen)[1] if seen else None

    # -- rounds -----------------------------------------------------------------------------

    async def tick(self) -> tuple[list[WatchRound], list[WatchVerdict]]:
        """One round of every watch this replica holds (or can take); the rounds and verdicts it made.

        At most one round per `watch_every` on this replica, however often it is ticked (half a round
        of slack for scheduler jitter): a round is what the probe count and the threshold are in."""
        async with self._lock:
            now = self._clock.now()
            every = self._config.changes.watch_every
            if self._last_round is not None and now - self._last_round < every / 2:
                return [], []
            self._last_round = now
            return await self._tick(now)

    async def _tick(self, now: datetime) -> tuple[list[WatchRound], list[WatchVerdict]]:
        settings = self._config.changes
        async with self._db.unit_of_work() as session:
            rows = await table.claim_watches(
                session, owner=self.owner, now=now, lease_until=now + settings.watch_every * LEASE_ROUNDS
            )
            held = [(to_change(row), WatchState.load(row.watch_state)) for row in rows]
        if not held:
            return [], []
        union = self.known([service for change, _ in held for service in change.services])
        results: dict[str, CheckResult] = {}
        if union:
            probed = await self._prober.probe(union)
            self.probes.update(r.service for r in probed)
            results = {r.service: r for r in probed}
        self.rounds += 1
        rounds: list[WatchRound] = []
        verdicts: list[WatchVerdict] = []
        ongoing: list[tuple[Change, WatchState]] = []
        for change, state in held:
            verdict = self._evaluate(change, state, results, now)
            if verdict is None:
                ongoing.append((change, state))
                rounds.append(
                    WatchRound(
                        change,
                        dict(state.last),
                        dict(state.baseline),
                        state.rounds,
                        now - change.recorded_at,
                        settings.watch_for,
                    )
                )
                continue
            try:
                claimed = await self._finish(change, state, verdict, now)
            except Exception:
                log.exception(
                    "recording the verdict of the watch after change %s failed; the next round retries", change.id
                )
                continue
            if claimed is not None:
                verdicts.append(claimed)
        self.remember(list(results.values()))
        if ongoing:
            await self._save(ongoing)
        if self.outbox is not None and any(not v.healthy for v in verdicts):
            self.outbox.kick()
        return rounds, verdicts

    def _evaluate(
        self, change: Change, state: WatchState, results: Mapping[str, CheckResult], now: datetime
    ) -> WatchVerdict | None:
        """Fold this round into `state`; the verdict when the watch ends now."""
        settings = self._config.changes
        state.rounds += 1
        alarm: tuple[str, CheckResult] | None = None
        for service in self.known(change.services):
            result = results.get(service)
            if result is None:
                continue
            status = result.status.value
            state.last[service] = status
            state.reasons[service] = result.reason
            if service not in state.baseline:
                before = self._baseline(service, change)
                if before is None:
                    state.baseline[service] = status  # the first round, at the change, is the baseline
                    continue
                state.baseline[service] = before
            if RANK.get(status, 0) > RANK.get(state.baseline[service], 0):
                state.streaks[service] = state.streaks.get(service, 0) + 1
                state.bad_since.setdefault(service, result.checked_at.isoformat())
            else:
                state.streaks.pop(service, None)
                state.bad_since.pop(service, None)
            if state.streaks.get(service, 0) >= settings.watch_threshold and alarm is None:
                alarm = (service, result)
        if alarm is not None:
            service, result = alarm
            since = state.bad_since_at(service) or now
            return WatchVerdict(
                change=change,
                healthy=False,
                statuses=dict(state.last),
                service=service,
                status=result.status.value,
                reason=result.reason,
                after=max(since - change.recorded_at, timedelta(0)),
            )
        if change.watch_until is not None and now >= change.watch_until:
            return WatchVerdict(change=change, healthy=True, statuses=dict(state.last))
        return None

    async def _save(self, ongoing: list[tuple[Change, WatchState]]) -> None:
        try:
            async with self._db.unit_of_work() as session:
                for change, state in ongoing:
                    await table.save_round(session, change_id=change.id, owner=self.owner, state=state.dump())
        except Exception:
            log.exception("saving the watch rounds failed; the next round goes on from what this replica holds")

    async def _finish(
        self, change: Change, state: WatchState, verdict: WatchVerdict, now: datetime
    ) -> WatchVerdict | None:
        """Claim the verdict (once across replicas) with its audit entry and, for an alarm, its posts."""
        settings = self._config.changes
        async with self._db.unit_of_work() as session:
            if verdict.healthy:
                if not await table.finish_watch(
                    session, change_id=change.id, status=WatchStatus.HEALTHY.value, state=state.dump()
                ):
                    return None
                await append_entry(
                    session,
                    at=now,
                    actor="system",
                    action="change.watch_healthy",
                    subject=f"change:{change.id}",
                    details={"version": change.version, "services": list(change.services), "rounds": state.rounds},
                )
                return verdict
            auto_at = (
                now + settings.auto_rollback_after
                if settings.auto_rollback and self._config.rollback_step() is not None
                else None
            )
            values = {"alerted_at": now, "alert_service": verdict.service, "auto_rollback_at": auto_at}
            if not await table.finish_watch(
                session, change_id=change.id, status=WatchStatus.ALERTED.value, state=state.dump(), values=values
            ):
                return None
            verdict = WatchVerdict(**{**verdict.__dict__, "auto_rollback_at": auto_at})
            outbox_id = await enqueue(session, kind=payloads.ALERT, payload=payloads.verdict_payload(verdict), at=now)
            await table.set_values(session, change_id=change.id, values={"alert_outbox_id": outbox_id})
            await append_entry(
                session,
                at=now,
                actor="system",
                action="change.watch_alert",
                subject=f"change:{change.id}",
                details={
                    "version": change.version,
                    "service": verdict.service,
                    "status": verdict.status,
                    "reason": verdict.reason,
                    "after_s": verdict.after.total_seconds() if verdict.after else None,
                    "auto_rollback_at": auto_at.isoformat() if auto_at else None,
                },
            )
        return WatchVerdict(**{**verdict.__dict__, "alert_outbox_id": outbox_id})
