"""An `http` check may read an error rate from a JSON metrics endpoint: down above the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.checks.base import Status
from bot.checks.runner import CheckRunner
from bot.config import ServiceConfig
from bot.resilience import Breakers
from bot.sandbox.fakes.targets import TargetServer
from tests.support.clock import FakeClock


@pytest.fixture
async def runner(clock: FakeClock) -> AsyncIterator[CheckRunner]:
    checks = CheckRunner(breakers=Breakers(clock=clock), clock=clock, tz=ZoneInfo("UTC"))
    yield checks
    await checks.aclose()


def metrics(name: str, url: str, **error_rate: Any) -> ServiceConfig:
    limit = {"field": "requests.error_rate", "max": 0.05, **error_rate}
    return ServiceConfig.model_validate({"name": name, "http": {"url": url, "error_rate": limit}})


async def test_an_error_rate_above_the_limit_is_down(runner: CheckRunner, targets: TargetServer) -> None:
    calm = targets.set("/calm", json={"requests": {"error_rate": 0.01, "total": 1200}})
    burning = targets.set("/burning", json={"requests": {"error_rate": 0.12}})
    missing = targets.set("/missing", json={"requests": {}})
    text = targets.set("/text", json={"requests": {"error_rate": "high"}})
    plain = targets.set("/plain", body="ok")

    results = {
        name: await runner.check(metrics(name, url))
        for name, url in (("calm", calm), ("burning", burning), ("missing", missing), ("text", text), ("plain", plain))
    }
    assert (results["calm"].status, results["calm"].reason) == (Status.UP, "HTTP 200, error rate 0.01")
    assert (results["burning"].status, results["burning"].reason) == (
        Status.DOWN,
        "error rate 0.12 > 0.05 (requests.error_rate)",
    )
    assert results["missing"].reason == "JSON has no requests.error_rate"
    assert results["text"].reason == 'requests.error_rate is "high", not a number'
    assert results["plain"].reason == "HTTP 200 but the body is not JSON"


def test_error_rate_is_validated() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        metrics("bad", "https://api.example.com/metrics", max=-1)
    with pytest.raises(ValueError, match="Field required"):
        ServiceConfig.model_validate({"name": "x", "http": {"url": "https://a.example.com", "error_rate": {"max": 1}}})
