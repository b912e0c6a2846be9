"""Small fakes for health tests: a scripted checker and the other features' ports."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.checks.base import CheckResult, Status
from bot.clock import Clock
from bot.config import ServiceConfig
from bot.services.ports import ActiveFreeze, DeployInfo, OpenIncident


class ScriptedChecker:
    """Answers each service with the status set for it (default up); counts checks; can hang."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.status: dict[str, Status] = {}
        self.hang: set[str] = set()
        self.delay = 0.0
        self.calls: Counter[str] = Counter()
        self.running: set[str] = set()  # checks started and not yet finished or cancelled
        self.started: asyncio.Queue[str] = asyncio.Queue()  # each check's service name as it starts

    async def check(self, service: ServiceConfig) -> CheckResult:
        self.calls[service.name] += 1
        self.running.add(service.name)
        self.started.put_nowait(service.name)
        try:
            if service.name in self.hang:
                await asyncio.Event().wait()  # ignores its own timeout: the round must not wait
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.running.discard(service.name)
        status = self.status.get(service.name, Status.UP)
        reason = "HTTP 200" if status is not Status.DOWN else "HTTP 503, expected 200"
        return CheckResult(service.name, status, 12.0, reason, self.clock.now())

    async def aclose(self) -> None:
        return None


@dataclass
class FakeFreezes:
    window: ActiveFreeze | None = None
    asked: list[str] = field(default_factory=list)

    async def active_window(self, environment: str, *, service: str | None = None) -> ActiveFreeze | None:
        self.asked.append(environment)
        return self.window


@dataclass
class FakeDeploys:
    deploys: list[DeployInfo] = field(default_factory=list)
    broken: bool = False

    async def recent(self, environment: str | None = None) -> list[DeployInfo]:
        if self.broken:
            raise RuntimeError("deploy table is locked")
        return [d for d in self.deploys if environment is None or d.environment == environment]


@dataclass
class FakeIncidents:
    incidents: list[OpenIncident] = field(default_factory=list)
    hang: bool = False

    async def open_incidents(self) -> list[OpenIncident]:
        if self.hang:
            await asyncio.Event().wait()
        return list(self.incidents)


def freeze(at: datetime, hours: int = 2) -> ActiveFreeze:
    return ActiveFreeze(
        id=7,
        environment="production",
        reason="Demo Day",
        starts_at=at,
        ends_at=at + timedelta(hours=hours),
        created_by="U0CAROL",
    )
