"""Rollback must always work: preview every rollback, production step and undo path, before it is needed.

`guardrail rollback-check` and a daily tick (`incidents.rollback_check_at`, claimed so one replica
runs it) call `RollbackCheck.run`: the `preview` of every step marked `rollback: true` or
`changes_production: true` and of every explicit `undo:` — credentials valid, target reachable,
a previous Heroku release or an older Kubernetes ReplicaSet to roll back to. Previews only read,
so nothing is changed by a check. A red result is posted in the deploys channel with what to fix;
every result is stored (the "last checked" line) and audited.

Limits: a token that may read but not write passes (writing is the one thing a check must not do);
an automatic undo (back to the remembered release, replica count or ReplicaSet) uses the step's own
app, credentials and target, so it is covered by the step's preview; an `http` step's preview
sends nothing (a hook may act even on GET), so its reachability is not proven.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from bot.actions.base import ActionContext, ActionOutcome, StepAction
from bot.checks.base import ServiceProber
from bot.clock import Clock
from bot.config import Action, GuardrailConfig
from bot.db import rollback_checks as table
from bot.db.audit import append_entry
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.services.ports import RollbackCheckStatus

PREVIEW_DEADLINE = timedelta(seconds=60)
ACTOR = "system"

ActionFactory = Callable[[Action], StepAction]


@dataclass(frozen=True)
class PathResult:
    """One path checked: a step (or its undo) of a playbook, green or red, and what to fix."""

    playbook: str
    step: str
    label: str
    path: str  # "step" or "undo"
    ok: bool
    summary: str
    fix: str | None = None


@dataclass(frozen=True)
class RollbackCheckReport:
    checked_at: datetime
    results: tuple[PathResult, ...]
    posted: bool | None = None  # red results: whether the deploys channel got them (None: nothing to post)

    @property
    def red(self) -> list[PathResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.red

    @property
    def headline(self) -> str:
        if not self.results:
            return "No rollback or production steps to check"
        if self.ok:
            count = len(self.results)
            return f"All {count} rollback paths can run" if count > 1 else "The rollback path can run"
        return f"{len(self.red)} of {len(self.results)} rollback paths cannot run"


class RedPoster(Protocol):
    async def post_red(self, channel: str, report: RollbackCheckReport) -> bool:
        """Post the red results; False (never raise) when they could not be posted."""
        ...


class NoRedPoster:
    async def post_red(self, channel: str, report: RollbackCheckReport) -> bool:
        return False


def what_to_fix(summary: str) -> str | None:
    """A hint for a red preview, from what the provider answered."""
    text = summary.lower()
    rules = [
        ("heroku_api_token is not set", "set HEROKU_API_TOKEN (heroku authorizations:create)"),
        (
            "heroku answered 401",
            "HEROKU_API_TOKEN is invalid or expired: create a new one "
            "(heroku authorizations:create) and update the setting",
        ),
        ("heroku answered 403", "the HEROKU_API_TOKEN's account has no access to this app: add it as a collaborator"),
        ("heroku answered 404", "the app name is wrong or the token cannot see it: check the step's app"),
        (
            "no successful release before",
            "there is no earlier release to roll back to: deploy once more before relying on this rollback",
        ),
        (
            "no revision before",
            "the Deployment keeps no older ReplicaSet: set spec.revisionHistoryLimit ≥ 1 and roll out once more",
        ),
        ("is paused", "resume the Deployment (kubectl rollout resume)"),
        ("kubernetes answered 401", "the Kubernetes credentials are invalid or expired: renew the kubeconfig token"),
        (
            "kubernetes answered 403",
            "the service account may not read this Deployment: grant get/patch on deployments and list on replicasets",
        ),
        ("kubernetes answered 404", "the namespace or Deployment name is wrong"),
        ("kubeconfig", "check KUBECONFIG and the step's context"),
    ]
    for needle, fix in rules:
        if needle in text:
            return fix
    if any(word in text for word in ("connect", "timed out", "no answer", "unreachable", "resolve", "paused")):
        return "guardrail cannot reach the provider: check the network path and the API URL"
    return None


class RollbackCheck:
    """Previews every rollback path; stores, audits and (when red) posts the result."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: GuardrailConfig,
        build_action: ActionFactory,
        breakers: Breakers,
        *,
        secrets: dict[str, str],
        endpoints: dict[str, str],
        prober: ServiceProber | None = None,
        poster: RedPoster | None = None,
        deadline: timedelta = PREVIEW_DEADLINE,
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._build = build_action
        self._breakers = breakers
        self._secrets = secrets
        self._endpoints = endpoints
        self._prober = prober
        self._deadline = deadline
        self._poster: RedPoster = poster or NoRedPoster()

    @property
    def tz(self) -> tzinfo:
        return self._config.tz

    def paths(self) -> list[tuple[str, str, str, str, Action]]:
        """(playbook, step id, label, "step"/"undo", action) for everything the check previews."""
        found = []
        for playbook in self._config.playbooks:
            for step in playbook.steps:
                if not (step.rollback or step.changes_production):
                    continue
                found.append((playbook.name, step.id, step.label, "step", step.action))
                if step.undo is not None:
                    found.append((playbook.name, step.id, step.label, "undo", step.undo))
        return found

    async def _preview(self, playbook: str, step: str, label: str, path: str, action: Action) -> PathResult:
        ctx = ActionContext(
            actor=ACTOR,
            incident_id=None,
            step_id=f"{step}:undo" if path == "undo" else step,
            clock=self._clock,
            breakers=self._breakers,
            prober=self._prober,
            secrets=self._secrets,
            endpoints=self._endpoints,
        )
        try:
            outcome = await asyncio.wait_for(self._build(action).preview(ctx), self._deadline.total_seconds())
        except TimeoutError:
            outcome = ActionOutcome(False, f"no answer within {self._deadline.total_seconds():g}s")
        except Exception as exc:
            outcome = ActionOutcome(False, f"preview failed: {type(exc).__name__}: {exc}")
        return PathResult(
            playbook,
            step,
            label,
            path,
            outcome.ok,
            outcome.summary,
            None if outcome.ok else what_to_fix(outcome.summary),
        )

    async def run(self, *, key: str | None = None) -> RollbackCheckReport:
        """Preview every path now, record the result, post it when red; `key` is a claimed run's key."""
        started = self._clock.now()
        if key is None:
            key = f"run:{uuid.uuid4().hex[:16]}"
            async with self._db.unit_of_work() as session:
                await table.claim_run(session, key, at=started)
        results = await asyncio.gather(*(self._preview(*p) for p in self.paths()))
        report = RollbackCheckReport(self._clock.now(), tuple(results))
        async with self._db.unit_of_work() as session:
            await table.finish_run(
                session, key, at=report.checked_at, ok=report.ok, results=json.dumps([asdict(r) for r in results])
            )
            await append_entry(
                session,
                at=report.checked_at,
                actor=ACTOR,
                action="rollback_check.finished",
                subject=key,
                details={
                    "ok": report.ok,
                    "paths": len(results),
                    "red": [f"{r.playbook}/{r.step} ({r.path}): {r.summary}" for r in report.red],
                },
            )
        if report.ok:
            return report
        posted = await self._poster.post_red(self._config.channels.deploys, report)
        return RollbackCheckReport(report.checked_at, report.results, posted)

    async def daily_tick(self) -> RollbackCheckReport | None:
        """The daily check, on the one replica that claims today's run; None elsewhere."""
        now = self._clock.now()
        today = now.astimezone(self.tz).date().isoformat()
        key = f"daily:{today}"
        async with self._db.unit_of_work() as session:
            if not await table.claim_run(session, key, at=now):
                return None
        return await self.run(key=key)

    async def last_rollback_check(self) -> RollbackCheckStatus | None:
        return await LastRollbackCheck(self._db).last_rollback_check()


class LastRollbackCheck:
    """`RollbackCheckLookup` (bot.services.ports): a read of the database alone, so health and
    incidents can be given it before the rollback check (which runs health checks) exists."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def last_rollback_check(self) -> RollbackCheckStatus | None:
        async with self._db.reader() as session:
            row = await table.last_finished(session)
        if row is None or row.finished_at is None:
            return None
        results = json.loads(row.results or "[]")
        red = sum(1 for r in results if not r.get("ok"))
        return RollbackCheckStatus(checked_at=row.finished_at, ok=bool(row.ok), paths=len(results), red=red)
