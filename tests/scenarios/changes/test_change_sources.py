"""Changes nobody announced: Heroku releases and Kubernetes rollouts, found by polling the local fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.sandbox.fakes.heroku import TOKEN as HEROKU_TOKEN
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.kubernetes import TOKEN as KUBE_TOKEN
from bot.sandbox.fakes.kubernetes import FakeKubernetes
from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from bot.services.changes import ChangeKind
from bot.services.changes.sources.heroku import kind_of
from tests.support.bot import running_bot
from tests.support.changes import change_config, text_of
from tests.support.clock import FakeClock

HEROKU_SOURCE = """\
  sources:
    production:
      - heroku: {app: acme-prod}
        service: api
"""
KUBERNETES_SOURCE = """\
  sources:
    production:
      - kubernetes: {namespace: prod, deployment: api}
"""


@pytest.mark.parametrize(
    ("description", "kind"),
    [
        ("Deploy 1a2b3c4", ChangeKind.DEPLOY),
        ("Promote from acme-staging", ChangeKind.DEPLOY),
        ("Set FOO, BAR config vars", ChangeKind.CONFIG),
        ("Remove FOO config vars", ChangeKind.CONFIG),
        ("Rollback to v41", ChangeKind.ROLLBACK),
        ("Attach DATABASE (@ref:postgresql-1)", ChangeKind.OTHER),
    ],
)
def test_heroku_release_descriptions_say_what_changed(description: str, kind: ChangeKind) -> None:
    assert kind_of(description) is kind


async def test_a_new_config_var_release_is_one_change_across_two_replicas(
    postgres_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    heroku = FakeHeroku()
    app = heroku.add_app("acme-prod", releases=3)
    async with target_server() as target, heroku.serve() as heroku_url:
        config = change_config(tmp_path, target.set("/api"), HEROKU_SOURCE)
        settings: dict[str, Any] = {"heroku_api_url": heroku_url, "heroku_api_token": HEROKU_TOKEN}
        async with (
            running_bot(database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock, **settings) as one,
            running_bot(database_url=postgres_url, config_dir=config, fake=fake_slack, clock=clock, **settings) as two,
        ):
            # The first poll lists the history ("is it the deploy?") without watching it.
            first = await asyncio.gather(one.runtime.changes.poll_tick(), two.runtime.changes.poll_tick())
            assert sorted(c.version for batch in first for c in batch) == ["v1", "v2", "v3"]
            mark = fake_slack.mark()
            app.add_release("Set FEATURE_X config vars")
            found = await asyncio.gather(one.runtime.changes.poll_tick(), two.runtime.changes.poll_tick())
            recorded = [c for batch in found for c in batch]
            assert [(c.version, c.kind, c.actor) for c in recorded] == [
                ("v4", ChangeKind.CONFIG, "deployer@example.com")
            ]
            await one.runtime.outbox.settle()
            await two.runtime.outbox.settle()
            await one.runtime.outbox.dispatch()
            watching = [c for c in fake_slack.calls_to("chat.postMessage", after=mark) if "Watching" in text_of(c)]
            assert [text_of(c) for c in watching] == ["Watching api for 15 min after v4 by deployer@example.com"]
            audit = await one.runtime.audit.latest(50)
            assert [e.details.get("version") for e in audit if e.action == "change.recorded"].count("v4") == 1
            assert heroku.writes() == []  # polling never changes anything
            ranges = {r.headers.get("range") for r in heroku.requests}
            assert ranges == {"version ..; order=desc, max=10"}


async def test_heroku_answering_503_is_retried_within_bounds_and_then_left_for_the_next_poll(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    heroku = FakeHeroku()
    app = heroku.add_app("acme-prod", releases=2)
    async with target_server() as target, heroku.serve() as heroku_url:
        config = change_config(tmp_path, target.set("/api"), HEROKU_SOURCE)
        async with running_bot(
            database_url=database_url,
            config_dir=config,
            fake=fake_slack,
            clock=clock,
            heroku_api_url=heroku_url,
            heroku_api_token=HEROKU_TOKEN,
        ) as bot:
            await bot.runtime.changes.poll_tick()
            app.add_release("Deploy 9f8e7d6")
            heroku.faults.fail(status=503)
            before = len(heroku.requests)
            assert await bot.runtime.changes.poll_tick() == []
            assert len(heroku.requests) - before == 2  # the read policy's two attempts, no more
            heroku.faults.clear()
            assert [c.version for c in await bot.runtime.changes.poll_tick()] == ["v3"]


async def test_a_new_kubernetes_rollout_is_a_change(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    kube = FakeKubernetes()
    deployment = kube.add_deployment("prod", "api", images=["api:1", "api:2"], replicas=2)
    async with target_server() as target, kube.serve() as kube_url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "prod",
                    "clusters": [{"name": "c", "cluster": {"server": kube_url}}],
                    "users": [{"name": "u", "user": {"token": KUBE_TOKEN}}],
                    "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
                }
            )
        )
        config = change_config(tmp_path, target.set("/api"), KUBERNETES_SOURCE)
        async with running_bot(
            database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, kubeconfig=str(kubeconfig)
        ) as bot:
            assert [c.version for c in await bot.runtime.changes.poll_tick()] == ["r2"]  # history, unwatched
            deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "api:3"
            deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] = "ana: deploy api:3"
            kube._reconcile(deployment)
            recorded = await bot.runtime.changes.poll_tick()
            assert [(c.version, c.actor, c.description) for c in recorded] == [
                ("r3", "ana: deploy api:3", "rollout of api:3")
            ]
            assert recorded[0].watch_status.value == "watching"
            assert await bot.runtime.changes.poll_tick() == []
            assert kube.writes() == []
