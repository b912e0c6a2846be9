"""Rollback must always work: previews of every rollback path against the Heroku and Kubernetes fakes,
green and red, the stored result, the daily claim — and never a mutating request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.actions import build_action
from bot.config import GuardrailConfig
from bot.db.engine import Database
from bot.resilience import Breakers
from bot.sandbox.fakes.heroku import TOKEN, FakeHeroku
from bot.sandbox.fakes.kubernetes import FakeKubernetes, kubeconfig
from bot.services.rollback_check import RollbackCheck, RollbackCheckReport
from tests.support.clock import FakeClock

PLAYBOOK = {
    "name": "production-incident",
    "steps": [
        {"id": "restart-notes", "label": "Read the notes", "action": {"checks": ["api"]}},
        {
            "id": "rollback-heroku",
            "label": "Roll back the API",
            "rollback": True,
            "changes_production": True,
            "action": {"heroku": {"rollback": {"app": "acme-prod"}}},
        },
        {
            "id": "stop-workers",
            "label": "Stop the workers",
            "changes_production": True,
            "action": {"heroku": {"scale": {"app": "acme-prod", "process": "worker", "quantity": 0}}},
            "undo": {"heroku": {"scale": {"app": "acme-prod", "process": "worker", "quantity": 3}}},
        },
        {
            "id": "rollback-kube",
            "label": "Roll back the consumer",
            "rollback": True,
            "changes_production": True,
            "action": {"kubernetes": {"rollback": {"namespace": "prod", "deployment": "api"}}},
        },
    ],
}


def config_with(playbook: dict[str, Any] = PLAYBOOK) -> GuardrailConfig:
    return GuardrailConfig.model_validate(
        {
            "channels": {"deploys": "C0DEPLOYS"},
            "services": [{"name": "api", "tcp": {"host": "127.0.0.1", "port": 1}}],
            "playbooks": [playbook],
        }
    )


class RecordingPoster:
    def __init__(self) -> None:
        self.posted: list[tuple[str, RollbackCheckReport]] = []

    async def post_red(self, channel: str, report: RollbackCheckReport) -> bool:
        self.posted.append((channel, report))
        return True


@dataclass
class Providers:
    heroku: FakeHeroku
    kube: FakeKubernetes
    heroku_url: str
    kubeconfig: Path

    def writes(self) -> list[Any]:
        return self.heroku.writes() + self.kube.writes()


@pytest.fixture
async def providers(tmp_path: Path) -> AsyncIterator[Providers]:
    heroku, kube = FakeHeroku(), FakeKubernetes()
    heroku.add_app("acme-prod", releases=3, formation={"web": 2, "worker": 3})
    kube.add_deployment("prod", "api", images=["api:1", "api:2"], replicas=2)
    async with heroku.serve() as heroku_url, kube.serve() as kube_url:
        yield Providers(heroku, kube, heroku_url, kubeconfig(tmp_path / "kubeconfig", kube_url))


def checker(
    db: Database,
    providers: Providers,
    *,
    token: str = TOKEN,
    config: GuardrailConfig | None = None,
    clock: FakeClock | None = None,
    poster: RecordingPoster | None = None,
) -> RollbackCheck:
    clock = clock or FakeClock()
    return RollbackCheck(
        db,
        clock,
        config or config_with(),
        build_action,
        Breakers(clock=clock),
        secrets={"heroku_api_token": token},
        endpoints={"heroku_api_url": providers.heroku_url, "kubeconfig": str(providers.kubeconfig)},
        poster=poster or RecordingPoster(),
    )


async def test_every_rollback_path_is_previewed_green_and_nothing_is_changed(
    db: Database, providers: Providers
) -> None:
    poster = RecordingPoster()
    check = checker(db, providers, poster=poster)
    report = await check.run()

    assert [(r.step, r.path, r.ok) for r in report.results] == [
        ("rollback-heroku", "step", True),
        ("stop-workers", "step", True),
        ("stop-workers", "undo", True),
        ("rollback-kube", "step", True),
    ]  # the read-only checks step is not a rollback path
    assert report.results[0].summary.startswith("Would roll back acme-prod from v3")
    assert "to revision 1" in report.results[3].summary
    assert report.headline == "All 4 rollback paths can run"
    assert providers.writes() == []
    assert providers.heroku.requests and providers.kube.requests  # it did look
    assert poster.posted == []  # green is not posted
    last = await check.last_rollback_check()
    assert last is not None and (last.ok, last.paths, last.red) == (True, 4, 0)


async def test_a_broken_heroku_token_is_red_with_what_to_fix_and_nothing_is_changed(
    db: Database, providers: Providers
) -> None:
    poster = RecordingPoster()
    check = checker(db, providers, token="expired-token", poster=poster)
    report = await check.run()

    red = {(r.step, r.path): r for r in report.red}
    assert set(red) == {("rollback-heroku", "step"), ("stop-workers", "step"), ("stop-workers", "undo")}
    assert "Heroku answered 401" in red[("rollback-heroku", "step")].summary
    assert "HEROKU_API_TOKEN is invalid or expired" in (red[("rollback-heroku", "step")].fix or "")
    assert report.headline == "3 of 4 rollback paths cannot run"
    assert [channel for channel, _ in poster.posted] == ["C0DEPLOYS"]
    assert providers.writes() == []
    last = await check.last_rollback_check()
    assert last is not None and (last.ok, last.red) == (False, 3)


async def test_nothing_to_roll_back_to_is_red(db: Database, providers: Providers) -> None:
    providers.heroku.add_app("fresh-app", releases=1)
    providers.kube.add_deployment("prod", "new-service", images=["new:1"], replicas=1)
    playbook = {
        "name": "p",
        "steps": [
            {
                "id": "heroku",
                "label": "Roll back fresh",
                "rollback": True,
                "changes_production": True,
                "action": {"heroku": {"rollback": {"app": "fresh-app"}}},
            },
            {
                "id": "kube",
                "label": "Roll back new",
                "rollback": True,
                "changes_production": True,
                "action": {"kubernetes": {"rollback": {"namespace": "prod", "deployment": "new-service"}}},
            },
        ],
    }
    report = await checker(db, providers, config=config_with(playbook)).run()

    heroku, kube = report.results
    assert not heroku.ok and "no successful release before v1" in heroku.summary
    assert heroku.fix is not None and "no earlier release" in heroku.fix
    assert not kube.ok and "no revision before revision 1" in kube.summary
    assert kube.fix is not None and "revisionHistoryLimit" in kube.fix
    assert providers.writes() == []


async def test_the_daily_check_runs_on_one_replica(db: Database, providers: Providers) -> None:
    clock = FakeClock()
    replicas = [checker(db, providers, clock=clock) for _ in range(2)]
    first = await asyncio.gather(*(r.daily_tick() for r in replicas))
    assert sorted(report is None for report in first) == [False, True]
    assert [await r.daily_tick() for r in replicas] == [None, None]  # same day: already done

    clock.advance(timedelta(days=1))
    assert sum(report is not None for report in [await r.daily_tick() for r in replicas]) == 1
    assert providers.writes() == []
