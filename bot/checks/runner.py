"""Builds each configured service's probe once and runs it: `CheckRunner.check(service)`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo

import httpx

from bot.checks.base import CheckResult, Status
from bot.checks.http import HttpProbe
from bot.checks.probe import Probe, describe_error, measure
from bot.checks.sql import SqlProbe
from bot.checks.tcp import TcpProbe
from bot.clock import Clock
from bot.config import ServiceConfig
from bot.resilience import Breakers

HTTP_POOL = httpx.Limits(max_connections=200, max_keepalive_connections=50)
CLOSE_TIMEOUT = 2.0  # seconds a probe gets to release its connections


def preload(services: Sequence[ServiceConfig]) -> None:
    """Import the probe modules `services` use now, at startup, rather than on the event loop at the first check."""
    for kind in {service.kind for service in services} & {"redis", "rq"}:
        importlib.import_module(f"bot.checks.{kind}")


class CheckRunner:
    """Probes for configured services, built on first use and reused (one HTTP client for all)."""

    def __init__(
        self, *, breakers: Breakers, clock: Clock, tz: tzinfo, observe: Callable[[CheckResult], None] | None = None
    ) -> None:
        self._breakers = breakers
        self._observe = observe  # hears every result (metrics); must not raise
        self._clock = clock
        self._tz = tz
        self._http: httpx.AsyncClient | None = None
        self._probes: dict[str, tuple[ServiceConfig, Probe]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            # No retries, no redirects to somewhere else: one request is the measurement.
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0),
                limits=HTTP_POOL,
                follow_redirects=False,
                headers={"User-Agent": "guardrail-health/1"},
            )
        return self._http

    def _build(self, service: ServiceConfig) -> Probe:
        timeout = service.timeout.total_seconds()
        if service.http is not None:
            return HttpProbe(service.http, self._http_client())
        if service.tcp is not None:
            return TcpProbe(service.tcp)
        # Only configurations that use them import redis and rq (see `preload`).
        if service.sql is not None:
            return SqlProbe(service.sql, timeout)
        if service.redis is not None:
            from bot.checks.redis import RedisProbe

            return RedisProbe(service.redis, timeout)
        if service.rq is not None:
            from bot.checks.rq import RqProbe

            return RqProbe(service.rq, timeout, self._clock)
        raise ValueError(f"service {service.name} has no check")  # config validation prevents this

    def probe_for(self, service: ServiceConfig) -> Probe:
        """The service's probe, built on first use and rebuilt when its configuration changed;
        raises what building raises (a missing driver, say)."""
        known = self._probes.get(service.name)
        if known is None or known[0] != service:
            probe = self._build(service)
            if known is not None:
                self._retire(known[1])
            known = self._probes[service.name] = (service, probe)
        return known[1]

    def _retire(self, probe: Probe) -> None:
        """Close a replaced probe in the background; a check may still be using it."""
        task = asyncio.create_task(_close(probe), name=f"health:close:{probe.target}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _paused(self, since: datetime | None) -> str:
        when = f"failing since {since.astimezone(self._tz):%H:%M}, " if since else ""
        return f"{when}checks paused"

    async def check(self, service: ServiceConfig) -> CheckResult:
        """One measured attempt under the service's timeout and breaker; never raises."""
        slow = service.slow_after.total_seconds() if service.slow_after is not None else None
        try:
            probe = self.probe_for(service)
        except Exception as exc:
            result = CheckResult(service.name, Status.DOWN, None, describe_error(exc), self._clock.now())
        else:
            result = await measure(
                service.name,
                probe,
                limit=service.timeout.total_seconds(),
                slow_after=slow,
                breakers=self._breakers,
                clock=self._clock,
                paused_reason=self._paused,
            )
        if self._observe is not None:
            self._observe(result)
        return result

    async def aclose(self) -> None:
        probes = [p for _, p in self._probes.values()]
        self._probes.clear()
        for probe in probes:
            await _close(probe)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=CLOSE_TIMEOUT)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


async def _close(probe: Probe) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(probe.aclose(), timeout=CLOSE_TIMEOUT)
