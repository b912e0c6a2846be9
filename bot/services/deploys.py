"""Deploys: CI records one (refused while the environment is frozen), and features list the recent ones.

A deploy is recorded in the same unit of work as the gate's decision, its audit entries and its
announcement (written to the outbox, posted in the background), so CI never waits on Slack and a
deploy is never recorded past a freeze that had already started.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from bot.clock import Clock
from bot.db import freeze as tables
from bot.db.audit import AuditKeyMissing, append_entry
from bot.db.engine import Database
from bot.resilience import DatabaseTimeout, give_up_after
from bot.services.freeze.gate import decide
from bot.services.freeze.models import (
    FreezeNotice,
    FreezeRefused,
    GateDecision,
    GateUnavailable,
    NoticeKind,
    RecordedDeploy,
)
from bot.services.freeze.notices import enqueue_notice
from bot.services.freeze.records import exemption_from_row, gate_state
from bot.services.freeze.service import FreezeService
from bot.services.outbox import Outbox
from bot.services.ports import DeployInfo

log = logging.getLogger(__name__)


class Deploys:
    """Implements `DeployHistory` (bot.services.ports) for the other features."""

    def __init__(self, db: Database, clock: Clock, freezes: FreezeService, *, outbox: Outbox | None = None) -> None:
        self._db = db
        self._clock = clock
        self._freezes = freezes
        self._outbox = outbox

    async def record(
        self,
        *,
        environment: str,
        service: str,
        version: str,
        actor: str,
        url: str | None = None,
        idempotency_key: str | None = None,
    ) -> RecordedDeploy | GateDecision:
        """Record a deploy, or return the blocking decision when the environment is frozen.

        With an `idempotency_key` the same request recorded before is returned (`replayed`, not
        announced again), not recorded again; the same key with different fields is refused. Bounded
        like the gate: `GateUnavailable` when the database cannot answer within its timeout.
        """
        env = self._freezes.environment(environment)
        seconds = self._freezes.gate_timeout
        try:
            return await give_up_after(seconds, self._record(env, service, version, actor, url, idempotency_key))
        except FreezeRefused:
            raise
        except (TimeoutError, DatabaseTimeout):
            raise GateUnavailable(
                f"the database did not answer within {seconds:g}s; the deploy may or may "
                "not have been recorded: retry with the same Idempotency-Key"
            ) from None
        except AuditKeyMissing as exc:
            log.error("recording a deploy failed: %s", exc)
            raise GateUnavailable(f"{exc}; nothing was recorded") from None
        except Exception as exc:
            log.warning("recording a deploy failed: %s: %s", type(exc).__name__, str(exc)[:200])
            raise GateUnavailable(
                f"the database could not be written ({type(exc).__name__}); nothing was recorded"
            ) from None

    async def recent(self, environment: str | None = None) -> list[DeployInfo]:
        """DeployHistory: the newest deploy of each (environment, service), newest first."""
        async with self._db.reader() as session:
            rows = await tables.latest_deploys(session, environment=environment)
        return [DeployInfo(r.environment, r.service, r.version, r.actor, r.at, r.url) for r in rows]

    async def _record(
        self, env: str, service: str, version: str, actor: str, url: str | None, idempotency_key: str | None
    ) -> RecordedDeploy | GateDecision:
        now = self._clock.now()
        digest = hashlib.sha256(json.dumps([env, service, version, actor, url]).encode()).hexdigest()
        if idempotency_key is not None:
            earlier = await self._replay(idempotency_key, digest)
            if earlier is not None:
                return earlier
        async with self._db.unit_of_work(bound=self._freezes.gate_timeout) as session:
            windows, exemptions = await gate_state(session, at=now, until=now, environment=env)
            decision = decide(env, service, windows, exemptions, now)
            if decision.window is not None:
                await append_entry(
                    session,
                    at=now,
                    actor=actor,
                    action="freeze.deploy_blocked",
                    subject=f"freeze#{decision.window.id}",
                    details={"environment": env, "service": service, "version": version},
                )
                return decision
            used = decision.exemptions[0] if decision.exemptions else None
            deploy_id = await tables.insert_deploy(
                session,
                values={
                    "environment": env,
                    "service": service,
                    "version": version,
                    "actor": actor,
                    "url": url,
                    "at": now,
                    "exemption_id": used.id if used else None,
                    "idempotency_key": idempotency_key,
                    "request_digest": digest if idempotency_key is not None else None,
                },
            )
            if deploy_id is not None:
                details: dict[str, Any] = {"environment": env, "service": service, "version": version, "url": url}
                if decision.exemptions:
                    details["exemptions"] = [e.id for e in decision.exemptions]
                if idempotency_key is not None:
                    details["idempotency_key"] = idempotency_key
                await append_entry(
                    session,
                    at=now,
                    actor=actor,
                    action="freeze.deployed",
                    subject=f"deploy#{deploy_id}",
                    details=details,
                )
                for exemption in decision.exemptions:
                    await append_entry(
                        session,
                        at=now,
                        actor=actor,
                        action="freeze.exemption_used",
                        subject=f"exemption#{exemption.id}",
                        details={"deploy": deploy_id, "window": exemption.window_id},
                    )
                recorded = RecordedDeploy(
                    deploy_id, DeployInfo(env, service, version, actor, now, url), decision.exemptions
                )
                await enqueue_notice(session, FreezeNotice(NoticeKind.DEPLOYED, now, actor, deploy=recorded))
        if deploy_id is not None:
            if self._outbox is not None:
                self._outbox.kick()
            return recorded
        # A concurrent request with the same key recorded it between our look and our insert.
        assert idempotency_key is not None
        earlier = await self._replay(idempotency_key, digest)
        assert earlier is not None
        return earlier

    async def _replay(self, key: str, digest: str) -> RecordedDeploy | None:
        """The deploy recorded earlier under `key` (refused if its fields differ), or None."""
        async with self._db.reader(bound=self._freezes.gate_timeout) as session:
            row = await tables.deploy_by_key(session, key=key)
            if row is None:
                return None
            if row.request_digest != digest:
                raise FreezeRefused(
                    "This Idempotency-Key was used for a different deploy; use a new key.", field="idempotency_key"
                )
            used = await tables.exemption_by_id(session, exemption_id=row.exemption_id) if row.exemption_id else None
        assert row.id is not None
        return RecordedDeploy(
            row.id,
            DeployInfo(row.environment, row.service, row.version, row.actor, row.at, row.url),
            (exemption_from_row(used),) if used is not None else (),
            replayed=True,
        )
