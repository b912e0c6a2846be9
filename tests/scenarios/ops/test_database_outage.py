"""A database outage: the gate, /readyz, `freeze check` and the scheduler fail closed, quickly, and recover.

A TCP proxy (tests/support/tcp_proxy.py) sits between the bot and the real PostgreSQL and refuses,
black-holes or strands connections. The bounds are small here (settings) so the suite stays fast;
the promise checked is the README's: an answer — 503 with a reason, or exit 2 — within 5 s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.db import migrate
from bot.metrics import Metrics
from bot.runtime import Overrides
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import API_TOKEN, BotHarness, running_bot
from tests.support.paths import ROOT
from tests.support.tcp_proxy import FaultyProxy, faulty_proxy

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
PROMISE = 5.0  # seconds: the gate's answer when it cannot know (README, Reliability)
BOUNDS = {"gate_timeout": 0.5, "ready_timeout": 0.5, "database_timeout": 1.0, "database_connect_timeout": 2}
# /readyz answers within READY_TIMEOUT, plus room for a loaded 2-core machine — not the cut query's
# own cleanup (seconds), which would be the bug.
READY_ANSWER = BOUNDS["ready_timeout"] + 1.5
CLI_ENV = {"GATE_TIMEOUT": "0.5", "DATABASE_TIMEOUT": "1", "DATABASE_CONNECT_TIMEOUT": "2"}
DEPLOY = {"environment": "production", "service": "api", "version": "v1.4.2", "actor": "ci"}


@dataclass
class Outage:
    proxy: FaultyProxy
    bot: BotHarness
    api: httpx.AsyncClient

    async def timed(self, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await self.api.request(method, path, headers=AUTH, **kwargs)  # type: ignore[arg-type]
        return response, time.monotonic() - started

    def later(self) -> None:
        """Past the gate snapshot's horizon, so the next question must read the database."""
        self.bot.clock.advance(timedelta(minutes=5))


@asynccontextmanager
async def outage_bot(
    postgres_url: str, config_dir: Path, fake: FakeSlack, *, overrides: Overrides | None = None, **bounds: Any
) -> AsyncIterator[Outage]:
    migrate.upgrade(postgres_url)  # directly: alembic is synchronous and would block the proxy's loop
    async with (
        faulty_proxy(postgres_url) as proxy,
        running_bot(
            database_url=proxy.url_for(postgres_url),
            config_dir=config_dir,
            fake=fake,
            migrate_first=False,
            overrides=overrides,
            **{**BOUNDS, **bounds},
        ) as bot,
        httpx.AsyncClient(base_url=bot.url, timeout=30) as api,
    ):
        yield Outage(proxy, bot, api)


@pytest.fixture
async def outage(postgres_url: str, config_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[Outage]:
    async with outage_bot(postgres_url, config_dir, fake_slack) as harness:
        yield harness


async def freeze_production(bot: BotHarness, *, starts_in: timedelta = timedelta()) -> int:
    window = await bot.runtime.freezes.create(
        starts_at=bot.clock.now() + starts_in,
        ends_at=bot.clock.now() + starts_in + timedelta(hours=2),
        environment="production",
        reason="Demo Day",
        actor="U0CAROL",
    )
    return window.id


async def freeze_check(bot: BotHarness, *args: str, bounds: dict[str, str] = CLI_ENV) -> tuple[int, str, float]:
    """`guardrail freeze check` in a subprocess (the bot's database URL, small bounds unless `bounds`
    says otherwise): exit code, output, and seconds from the process's start to its exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GUARDRAIL_", "DATABASE_", "GATE_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GUARDRAIL_API_TOKEN": API_TOKEN,
            **bounds,
            "DATABASE_URL": bot.runtime.settings.database_url,
            "GUARDRAIL_CONFIG": str(bot.runtime.settings.guardrail_config),
        }
    )
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "freeze",
        "check",
        "--environment",
        "production",
        *args,
        env=env,
        cwd=str(bot.runtime.settings.guardrail_config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode(), time.monotonic() - started


def assert_fails_closed(response: httpx.Response, seconds: float, why: str) -> None:
    assert response.status_code == 503, response.text
    assert why in response.json()["reason"] and "do not deploy" in response.json()["error"]
    assert seconds < PROMISE, f"answered after {seconds:.1f}s"


# --- the gate, /readyz and freeze check -----------------------------------------------------------


async def test_black_holed_database_gate_503_within_5s_readyz_503_cli_exit_2_then_recovers(outage: Outage) -> None:
    window_id = await freeze_production(outage.bot)
    response, _ = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert response.status_code == 423

    outage.proxy.mode = "blackhole"
    outage.later()
    asked = [outage.timed("GET", "/api/v1/freeze", params={"environment": env}) for env in ("production", "staging")]
    for response, seconds in await asyncio.gather(*asked):
        assert_fails_closed(response, seconds, "did not answer within 0.5s")
    response, seconds = await outage.timed("POST", "/api/v1/deploys", json={**DEPLOY, "environment": "staging"})
    assert_fails_closed(response, seconds, "did not answer within 0.5s")
    response, seconds = await outage.timed("GET", "/readyz")
    assert response.status_code == 503 and seconds < READY_ANSWER, seconds
    assert response.json()["reasons"] == ["database: no answer within 0.5s"]

    code, output, seconds = await freeze_check(outage.bot, "--url", outage.bot.url)
    assert code == 2 and "cannot tell whether production may deploy" in output and "do not deploy" in output
    assert seconds < 15, f"freeze check --url took {seconds:.1f}s"  # Python start-up included
    # The default bounds (GATE_TIMEOUT 2 s, a 5 s connect timeout): the README's promise, Python's
    # start-up included.
    code, output, seconds = await freeze_check(outage.bot, bounds={})
    assert code == 2 and "cannot reach the database" in output, output
    assert seconds < PROMISE, f"freeze check took {seconds:.1f}s"

    outage.proxy.mode = "pass"
    response, _ = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert response.status_code == 423 and response.json()["window"]["id"] == window_id
    response, _ = await outage.timed("GET", "/api/v1/freeze", params={"environment": "staging"})
    assert response.status_code == 200
    response, _ = await outage.timed("GET", "/readyz")
    assert response.status_code == 200
    code, output, _ = await freeze_check(outage.bot)
    assert code == 0 and "not frozen" in output  # the CLI runs on the real clock, past the window


async def test_stranded_connections_cost_one_bounded_503_then_the_gate_reconnects(outage: Outage) -> None:
    """A failover without resets: pooled connections go silent, new ones work."""
    await freeze_production(outage.bot)
    response, _ = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert response.status_code == 423

    outage.proxy.mode = "strand"
    outage.later()
    response, seconds = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert_fails_closed(response, seconds, "did not answer within 0.5s")
    # The silent pool was thrown away when the bound expired: the next question connects afresh.
    response, seconds = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert response.status_code == 423 and seconds < PROMISE

    outage.proxy.mode = "strand"  # the connections made since go silent too
    response, seconds = await outage.timed("GET", "/readyz")
    assert response.status_code == 503 and seconds < READY_ANSWER, (response.text, seconds)
    response, seconds = await outage.timed("GET", "/readyz")
    assert response.status_code == 200 and seconds < PROMISE

    outage.proxy.mode = "strand"
    response, seconds = await outage.timed("POST", "/api/v1/deploys", json={**DEPLOY, "environment": "staging"})
    assert_fails_closed(response, seconds, "did not answer within 0.5s")
    response, _ = await outage.timed("POST", "/api/v1/deploys", json={**DEPLOY, "environment": "staging"})
    assert response.status_code == 201


async def test_refused_connections_gate_503_at_once_readyz_503_cli_exit_2(outage: Outage) -> None:
    response, _ = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert response.status_code == 200

    outage.proxy.mode = "refuse"
    outage.later()
    response, seconds = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert_fails_closed(response, seconds, "the database could not be read (OperationalError)")
    response, seconds = await outage.timed("POST", "/api/v1/deploys", json=DEPLOY)
    assert_fails_closed(response, seconds, "nothing was recorded")
    response, _ = await outage.timed("GET", "/readyz")
    # Refused at once, normally; on a starved machine the 0.5 s bound can expire first. Either way
    # the database is named as the reason (the gate's own reason is checked above).
    assert response.status_code == 503 and response.json()["reasons"][0].startswith("database: ")
    assert response.json()["reasons"][0] in ("database: OperationalError", "database: no answer within 0.5s")
    code, output, _ = await freeze_check(outage.bot)
    assert code == 2 and "cannot reach the database" in output

    outage.proxy.mode = "pass"
    response, _ = await outage.timed("GET", "/api/v1/freeze", params={"environment": "production"})
    assert response.status_code == 200


# --- the scheduler --------------------------------------------------------------------------------


async def test_a_hung_freeze_tick_is_cut_logged_once_and_the_due_start_is_announced_once_back(
    postgres_url: str, config_dir: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot's own scheduler (1 s freeze tick) on the real event loop; the database's own bound is
    long here, so only the tick's deadline can cut the hang."""
    caplog.set_level(logging.WARNING)
    metrics = FreezeTicks()
    async with outage_bot(
        postgres_url,
        config_dir,
        fake_slack,
        overrides=Overrides(metrics=metrics),
        database_timeout=60.0,
        tick_deadline=1.0,
    ) as outage:
        window_id = await freeze_production(outage.bot, starts_in=timedelta(minutes=1))
        outage.proxy.mode = "blackhole"
        outage.bot.clock.advance(timedelta(minutes=2))  # the start is due, and the database is away

        cut = await logged(caplog, "freeze tick cut after 1s")
        ticks = metrics.from_now()
        for _ in range(3):  # three more ticks: each cut, none logged again, none "skipped"
            assert await asyncio.wait_for(ticks.get(), timeout=30) is False
        assert logged_now(caplog, "freeze tick cut") == [cut]
        assert not logged_now(caplog, "skipped") and not logged_now(caplog, "Traceback")
        assert not [c for c in fake_slack.calls_to("chat.postMessage") if "has started" in str(c.args)]

        outage.proxy.mode = "pass"
        text = f"Freeze #{window_id} on production has started"
        posted = await fake_slack.wait_for("chat.postMessage", lambda c: text in str(c.args), timeout=10)
        assert posted.args["channel"] == "C0DEPLOYS"
        await logged(caplog, "freeze tick works again")


class FreezeTicks(Metrics):
    """The bot's metrics, which also hand each finished freeze tick (True: it worked, False: it was cut
    or failed) to a queue; a run the scheduler skipped reports nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: asyncio.Queue[bool] = asyncio.Queue()

    def tick(self, job: str, *, ok: bool) -> None:
        super().tick(job, ok=ok)
        if job == "freeze tick":
            self.finished.put_nowait(ok)

    def from_now(self) -> asyncio.Queue[bool]:
        """The queue, emptied of the ticks that finished so far."""
        while not self.finished.empty():
            self.finished.get_nowait()
        return self.finished


def logged_now(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage() or text in (r.exc_text or "")]


async def logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
    """The first log line containing `text`, waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while not (found := logged_now(caplog, text)):
        assert time.monotonic() < deadline, f"nothing logged with {text!r}"
        await asyncio.sleep(0.05)
    return found[0]
