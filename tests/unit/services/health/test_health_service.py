"""HealthService: shared rounds, freshness, deadlines, down-since and the surrounding facts."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from bot.checks.base import Status
from bot.config import GuardrailConfig
from bot.services.health import HealthService, UnknownService
from bot.services.ports import DeployInfo, OpenIncident
from tests.support.clock import FakeClock
from tests.support.health_fakes import FakeDeploys, FakeFreezes, FakeIncidents, ScriptedChecker, freeze

SLACK = 1.5  # seconds a deadline may overrun on a loaded 2-core CI machine; a hang would overrun far more


def config(*names: str, **extra: Any) -> GuardrailConfig:
    services = [{"name": n, "tcp": {"host": "127.0.0.1", "port": 1}, "timeout": "500ms"} for n in names]
    return GuardrailConfig.model_validate({"channels": {"deploys": "C0DEPLOYS"}, "services": services, **extra})


def service(clock: FakeClock, *names: str, **kwargs: Any) -> tuple[HealthService, ScriptedChecker]:
    checker = ScriptedChecker(clock)
    return HealthService(config(*names), checker, clock, **kwargs), checker


async def test_headlines(clock: FakeClock) -> None:
    health, checker = service(clock, "api", "checkout", "jobs", "web")
    assert (await health.report()).headline == "All 4 services up"
    checker.status |= {"checkout": Status.DOWN, "jobs": Status.DOWN, "web": Status.SLOW}
    clock.advance(timedelta(seconds=11))
    report = await health.report()
    assert report.headline == "2 of 4 down: checkout, jobs"
    assert (report.down, report.slow) == (["checkout", "jobs"], ["web"])
    checker.status = {"web": Status.SLOW}
    clock.advance(timedelta(seconds=11))
    assert (await health.report()).headline == "All 4 services up (1 slow: web)"
    assert (await health.report("web")).headline == "web is slow"


async def test_fifty_concurrent_askers_share_one_round(clock: FakeClock) -> None:
    freezes = FakeFreezes(freeze(clock.now()))
    health, checker = service(clock, "api", "db", freezes=freezes)
    checker.delay = 0.05
    reports = await asyncio.gather(*(health.report() for _ in range(50)))
    assert checker.calls == {"api": 1, "db": 1}
    assert freezes.asked == ["production"]  # the lookups are part of the shared round, not per asker
    assert all(r.headline == "All 2 services up" and r.freeze is not None for r in reports)


async def test_a_cancelled_round_leaves_no_check_running(clock: FakeClock) -> None:
    health, checker = service(clock, "api", "stuck")
    checker.hang.add("stuck")
    checker.delay = 60
    probing = asyncio.create_task(health.probe(["api", "stuck"]))
    assert {await checker.started.get(), await checker.started.get()} == {"api", "stuck"}
    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probing
    assert checker.running == set()


async def test_a_finished_round_is_reused_until_the_cache_ttl(clock: FakeClock) -> None:
    health, checker = service(clock, "api")
    first = await health.report()
    clock.advance(timedelta(seconds=9))
    again = await health.report()
    assert (first.reused, again.reused, again.age) == (False, True, timedelta(seconds=9))
    assert checker.calls["api"] == 1
    clock.advance(timedelta(seconds=1))  # default cache_ttl is 10s
    fresh = await health.report()
    assert (fresh.reused, fresh.age, checker.calls["api"]) == (False, timedelta(0), 2)


async def test_a_hanging_check_cannot_hold_the_round_past_its_deadline(clock: FakeClock) -> None:
    health, checker = service(clock, "api", "stuck")
    checker.hang.add("stuck")
    started = time.perf_counter()
    report = await health.report()
    elapsed = time.perf_counter() - started
    assert elapsed < 0.75 + SLACK  # the round's deadline (0.5s timeout + 0.25s), with room for a loaded CI box
    stuck = next(r for r in report.results if r.service == "stuck")
    assert (stuck.status, stuck.reason) == (Status.DOWN, "no answer within 0.75s")


async def test_down_since_is_kept_across_rounds_and_cleared_on_recovery(clock: FakeClock) -> None:
    health, checker = service(clock, "api")
    checker.status["api"] = Status.DOWN
    first = (await health.probe(["api"]))[0]
    assert first.down_since is None  # down in this round only
    went_down = clock.now()
    clock.advance(timedelta(minutes=3))
    assert (await health.probe(["api"]))[0].down_since == went_down
    checker.status["api"] = Status.UP
    assert (await health.probe(["api"]))[0].down_since is None
    checker.status["api"] = Status.DOWN
    clock.advance(timedelta(minutes=1))
    assert (await health.probe(["api"]))[0].down_since is None  # a new outage starts now


async def test_probe_runs_fresh_and_rejects_unknown_services(clock: FakeClock) -> None:
    health, checker = service(clock, "api", "db")
    await health.report()
    results = await health.probe(["db"])
    assert [r.service for r in results] == ["db"] and checker.calls["db"] == 2
    with pytest.raises(UnknownService) as raised:
        await health.probe(["db", "dbb"])
    assert (raised.value.names, raised.value.known) == (["dbb"], ["api", "db"])
    with pytest.raises(UnknownService):
        await health.report("nope")


async def test_the_answer_carries_freeze_deploys_and_incidents(clock: FakeClock) -> None:
    deploy = DeployInfo("production", "api", "v1.4.2", "ci", clock.now() - timedelta(minutes=4))
    staging = DeployInfo("staging", "api", "v1.5.0", "ci", clock.now())
    incident = OpenIncident(3, "Checkout failing", "sev1", "C0INC", clock.now())
    freezes = FakeFreezes(freeze(clock.now()))
    health, _ = service(
        clock, "api", freezes=freezes, deploys=FakeDeploys([deploy, staging]), incidents=FakeIncidents([incident])
    )
    report = await health.report()
    assert report.freeze is not None and report.freeze.reason == "Demo Day"
    assert freezes.asked == ["production"]  # the default environment
    assert report.deploys == [deploy]
    assert report.incidents == [incident]
    assert report.unavailable == []


async def test_a_failing_or_hanging_lookup_only_drops_its_own_line(clock: FakeClock) -> None:
    health, _ = service(clock, "api", deploys=FakeDeploys(broken=True), incidents=FakeIncidents(hang=True))
    started = time.perf_counter()
    report = await health.report()
    assert time.perf_counter() - started < 0.75 + SLACK  # the lookups' 0.75s bound, not the hang
    assert report.headline == "api is up"
    assert sorted(report.unavailable) == ["deploys", "incidents"]
