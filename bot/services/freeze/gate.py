"""The gate's decision, and the short-lived snapshot that lets it answer CI without a query per request.

The snapshot holds every window that is in force or starts within `HORIZON`, with their approved
exemptions; it is reloaded at most once per `TTL` (concurrent askers share one reload) and
dropped immediately after any write made through this process. A window created on another
replica is therefore seen here within `TTL`; recording a deploy always re-checks the database.

Within a snapshot each (environment, service) decision is computed once and kept until the next
window start, end or exemption expiry in the snapshot, so a request costs the same whatever the
number of windows in force.

The reload is bounded: an asker waits at most `timeout` seconds for it, then gets `GateUnavailable`
(the API answers 503, `freeze check` exits 2). No lock is held across the load: askers share the
loading task and each waits on it with its own deadline (`shared_load.SharedLoad`); a load still
running `timeout` after it began is given up on, so the next asker starts a fresh one. A stale snapshot is never used to
answer: failing closed is the rule (a window created on another replica during the outage would
be missed by a stale "not frozen").
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.clock import Clock
from bot.services.freeze.models import Exemption, FreezeWindow, GateDecision, GateUnavailable
from bot.services.shared_load import SharedLoad

TTL_SECONDS = 1.0
HORIZON = timedelta(minutes=5)
DEFAULT_TIMEOUT = 2.0
MAX_CACHED = 4096  # (environment, service) decisions per snapshot; beyond that the cache starts over

Loader = Callable[[datetime, datetime], Awaitable[tuple[list[FreezeWindow], list[Exemption]]]]

log = logging.getLogger(__name__)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def decide(
    environment: str,
    service: str | None,
    windows: Sequence[FreezeWindow],
    exemptions: Sequence[Exemption],
    now: datetime,
) -> GateDecision:
    """Frozen when a window is in force and (for a named service) no approved exemption covers it."""
    active = sorted(
        (w for w in windows if w.environment == environment and w.is_active(now)),
        key=lambda w: (-w.ends_at.timestamp(), w.id),
    )
    if not active:
        return GateDecision(environment, None)
    if service is None:
        return GateDecision(environment, active[0])
    ids = {w.id for w in active}
    valid = tuple(e for e in exemptions if e.window_id in ids and e.applies(service, now))
    covered = {e.window_id for e in valid}
    blocking = next((w for w in active if w.id not in covered), None)
    if blocking is not None:
        return GateDecision(environment, blocking)
    return GateDecision(environment, None, valid)


@dataclass(frozen=True)
class _Snapshot:
    at: datetime
    monotonic: float
    windows: tuple[FreezeWindow, ...]
    exemptions: tuple[Exemption, ...]
    _decisions: dict[tuple[str, str | None], tuple[GateDecision, datetime, datetime]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def fresh(self, now: datetime, monotonic: float) -> bool:
        return monotonic - self.monotonic < TTL_SECONDS and self.at <= now < self.at + HORIZON

    def decide(self, environment: str, service: str | None, now: datetime) -> GateDecision:
        """`decide` over this snapshot, computed once per (environment, service) while it cannot change."""
        key = (environment, service)
        cached = self._decisions.get(key)
        if cached is not None and cached[1] <= now < cached[2]:
            return cached[0]
        decision = decide(environment, service, self.windows, self.exemptions, now)
        if len(self._decisions) >= MAX_CACHED:
            self._decisions.clear()
        self._decisions[key] = (decision, *self._unchanged_around(environment, now))
        return decision

    def _unchanged_around(self, environment: str, now: datetime) -> tuple[datetime, datetime]:
        """[since, until): no window of `environment` starts or ends and no exemption lapses in it,
        so every decision for that environment taken at `now` holds throughout."""
        since, until = _EARLIEST, _LATEST
        ids = set()
        for w in self.windows:
            if w.environment == environment:
                ids.add(w.id)
                for moment in (w.starts_at, w.ends_at):
                    if moment <= now:
                        since = max(since, moment)
                    else:
                        until = min(until, moment)
        for e in self.exemptions:
            if e.window_id in ids and e.expires_at is not None:
                if e.expires_at <= now:
                    since = max(since, e.expires_at)
                else:
                    until = min(until, e.expires_at)
        return since, until


class GateSnapshot:
    def __init__(
        self,
        load: Loader,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._load = load
        self._clock = clock
        self._monotonic = monotonic
        self._snapshot: _Snapshot | None = None
        self._generation = 0
        self._loads: SharedLoad[_Snapshot] = SharedLoad(timeout)

    @property
    def timeout(self) -> float:
        return self._loads.timeout

    def invalidate(self) -> None:
        """Forget the snapshot (after a local write), so the next question reads the database."""
        self._snapshot = None
        self._generation += 1
        self._loads.forget()  # a load begun before the write may miss it: don't let askers join it

    async def decide(self, environment: str, service: str | None) -> GateDecision:
        """The decision now; `GateUnavailable` when the database cannot tell within `timeout`."""
        now = self._clock.now()
        snapshot = self._snapshot
        if snapshot is None or not snapshot.fresh(now, self._monotonic()):
            snapshot = await self._reload(now)
        return snapshot.decide(environment, service, now)

    async def _reload(self, now: datetime) -> _Snapshot:
        try:
            return await self._loads.get(functools.partial(self._load_snapshot, now, self._generation))
        except TimeoutError:  # our wait, or the database's own bound (DatabaseTimeout)
            raise GateUnavailable(f"the database did not answer within {self.timeout:g}s") from None
        except Exception as error:
            raise GateUnavailable(f"the database could not be read ({type(error).__name__})") from None

    async def _load_snapshot(self, now: datetime, generation: int) -> _Snapshot:
        try:
            windows, exemptions = await self._load(now, now + HORIZON)
        except Exception as exc:
            log.warning("freeze gate: cannot load windows: %s: %s", type(exc).__name__, str(exc)[:200])
            raise
        snapshot = _Snapshot(now, self._monotonic(), tuple(windows), tuple(exemptions))
        # Kept only when nothing was written meanwhile and no newer load replaced this slow one.
        if generation == self._generation and self._loads.is_current():
            self._snapshot = snapshot
        return snapshot
