"""The checks action (the verify step): fails if any named service is down, and lists each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.checks.base import CheckResult, Status
from tests.support.actions import action_from, make_ctx

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Prober:
    def __init__(self, *results: CheckResult) -> None:
        self.results = list(results)
        self.asked: list[list[str]] = []

    async def probe(self, names: Sequence[str]) -> list[CheckResult]:
        self.asked.append(list(names))
        return [r for r in self.results if r.service in names]


def result(service: str, status: Status, latency: float | None = 12.0, reason: str = "") -> CheckResult:
    return CheckResult(service=service, status=status, latency_ms=latency, reason=reason, checked_at=AT)


async def test_all_up_succeeds_and_lists_each_service() -> None:
    prober = Prober(result("database", Status.UP), result("jobs", Status.SLOW, 812, "slow"))
    step = action_from({"checks": ["database", "jobs"]})
    assert step.describe() == "Run health checks of database, jobs"
    outcome = await step.run(make_ctx(prober=prober))
    assert outcome.ok
    assert outcome.summary == "All healthy — database up (12 ms); jobs slow (812 ms): slow"
    assert prober.asked == [["database", "jobs"]]


async def test_one_down_fails_the_step() -> None:
    prober = Prober(result("database", Status.UP), result("jobs", Status.DOWN, None, "1203 queued > 1000"))
    outcome = await action_from({"checks": ["database", "jobs"]}).run(make_ctx(prober=prober))
    assert not outcome.ok
    assert outcome.summary == "Down: jobs — database up (12 ms); jobs down: 1203 queued > 1000"
    assert outcome.details["results"] == {"database": "up", "jobs": "down"}


async def test_a_service_without_a_result_counts_as_failed() -> None:
    outcome = await action_from({"checks": ["database"]}).run(make_ctx(prober=Prober()))
    assert not outcome.ok
    assert outcome.summary == "Down: database — database: no result"


async def test_without_a_prober_it_says_so() -> None:
    outcome = await action_from({"checks": ["database"]}).run(make_ctx())
    assert outcome == type(outcome)(ok=False, summary="Health checks are not available in this process")


async def test_preview_runs_the_read_only_checks() -> None:
    prober = Prober(result("database", Status.UP))
    outcome = await action_from({"checks": ["database"]}).preview(make_ctx(prober=prober))
    assert outcome.ok
    assert outcome.summary == "Checks change nothing, so they ran: All healthy — database up (12 ms)"
