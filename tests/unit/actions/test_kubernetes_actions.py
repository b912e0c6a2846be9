"""Kubernetes scale and rollback (what `kubectl rollout undo` does) against a fake API server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml

from bot.actions import ActionContext, StepAction, build_undo
from bot.actions.kubeconfig import KubeconfigError, load_credentials
from bot.resilience import Breakers
from bot.sandbox.fakes.kubernetes import TOKEN, FakeKubernetes, kubeconfig
from tests.support.actions import FAST_READS, FAST_SET, FAST_WRITE, action_from, make_ctx, step_from
from tests.support.clock import FakeClock

SCALE = {"kubernetes": {"scale": {"namespace": "prod", "deployment": "api-consumer", "replicas": 0}}}
ROLLBACK = {"kubernetes": {"rollback": {"namespace": "prod", "deployment": "api"}}}
Kube = tuple[FakeKubernetes, Path]


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    fake = FakeKubernetes()
    fake.add_deployment("prod", "api-consumer", images=["consumer:1"], replicas=3)
    fake.add_deployment("prod", "api", images=["api:1", "api:2", "api:3"], replicas=4)
    # Matches the selector and sorts first, but belongs to another owner: must never be the target.
    fake.add_foreign_replicaset("prod", "aaa-imposter", {"app": "api"}, revision=2)
    async with fake.serve() as url:
        yield fake, kubeconfig(tmp_path / "kubeconfig", url)


def ctx_for(config: Path, **kwargs: Any) -> ActionContext:
    return make_ctx(endpoints={"kubeconfig": str(config)}, **kwargs)


def fast(step: StepAction) -> StepAction:
    write = FAST_SET if hasattr(step, "replicas") else FAST_WRITE
    return dataclasses.replace(step, reads=FAST_READS, write=write)  # type: ignore[type-var]


async def test_scale_patches_the_scale_subresource_and_remembers_replicas(kube: Kube) -> None:
    fake, config = kube
    step = action_from(SCALE)
    assert step.describe() == "Scale Deployment prod/api-consumer to 0 replicas"
    outcome = await step.run(ctx_for(config))
    assert outcome.ok, outcome.summary
    assert outcome.summary == "Scaled prod/api-consumer from 3 to 0 replicas"
    assert outcome.remembered == {"namespace": "prod", "deployment": "api-consumer", "previous_replicas": 3}
    get, patch = fake.requests
    path = "/apis/apps/v1/namespaces/prod/deployments/api-consumer/scale"
    assert (get.method, get.path) == ("GET", path)
    assert (patch.method, patch.path, patch.body) == ("PATCH", path, {"spec": {"replicas": 0}})
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.headers["authorization"] == f"Bearer {TOKEN}"
    assert fake.deployments[("prod", "api-consumer")]["spec"]["replicas"] == 0

    undo = build_undo(step_from({"action": SCALE}), outcome.remembered)
    assert undo is not None and undo.describe() == "Scale Deployment prod/api-consumer to 3 replicas"
    assert (await undo.run(ctx_for(config))).ok
    assert fake.deployments[("prod", "api-consumer")]["spec"]["replicas"] == 3


async def test_scale_preview_changes_nothing(kube: Kube) -> None:
    fake, config = kube
    outcome = await action_from(SCALE).preview(ctx_for(config))
    assert outcome.summary == (
        "Would scale prod/api-consumer from 3 to 0 replicas: PATCH "
        '/apis/apps/v1/namespaces/prod/deployments/api-consumer/scale {"spec": {"replicas": 0}}'
    )
    assert fake.writes() == []


async def test_rollback_restores_the_previous_revisions_template(kube: Kube) -> None:
    fake, config = kube
    step = action_from(ROLLBACK)
    assert step.describe() == "Roll back Deployment prod/api to its previous revision"
    previous = next(
        rs
        for rs in fake.replicasets.values()
        if rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == "2"
    )
    name = previous["metadata"]["name"]

    preview = await step.preview(ctx_for(config))
    assert preview.summary == (
        f"Would roll back prod/api from revision 3 to revision 2 ({name}): PATCH the "
        "Deployment's spec.template (application/json-patch+json)"
    )
    assert fake.writes() == []

    outcome = await step.run(ctx_for(config))
    assert outcome.ok, outcome.summary
    assert outcome.summary == f"Rolled prod/api back from revision 3 to revision 2 ({name})"
    assert fake.image("prod", "api") == "api:2"
    [patch] = fake.writes()
    assert patch.headers["content-type"] == "application/json-patch+json"
    [op] = patch.body
    assert op["op"] == "replace" and op["path"] == "/spec/template"
    assert op["value"]["metadata"]["labels"] == {"app": "api"}  # without pod-template-hash
    deployment = fake.deployments[("prod", "api")]
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"  # like kubectl

    # Undo rolls forward to the ReplicaSet that was current (api:3), not "the previous one" again.
    undo = build_undo(step_from({"action": ROLLBACK}), outcome.remembered)
    assert undo is not None
    assert (await undo.run(ctx_for(config))).ok
    assert fake.image("prod", "api") == "api:3"
    again = await undo.run(ctx_for(config))
    assert again.ok and again.summary.endswith("nothing sent")
    assert len(fake.writes()) == 2


async def test_rolling_back_twice_walks_like_kubectl(kube: Kube) -> None:
    fake, config = kube
    step = action_from(ROLLBACK)
    assert (await step.run(ctx_for(config))).ok
    assert (await step.run(ctx_for(config))).ok  # kubectl rollout undo twice: back to where it was
    assert fake.image("prod", "api") == "api:3"


async def test_nothing_to_roll_back_to(kube: Kube) -> None:
    fake, config = kube
    step = action_from({"kubernetes": {"rollback": {"namespace": "prod", "deployment": "api-consumer"}}})
    outcome = await step.run(ctx_for(config))
    assert outcome.summary == (
        "Did not roll back prod/api-consumer: prod/api-consumer has no revision before revision 1 to roll back to"
    )
    assert fake.writes() == []


async def test_a_paused_deployment_is_refused(kube: Kube) -> None:
    fake, config = kube
    fake.deployments[("prod", "api")]["spec"]["paused"] = True
    outcome = await action_from(ROLLBACK).run(ctx_for(config))
    assert outcome.summary == "Did not roll back prod/api: prod/api is paused; resume it before rolling back"


async def test_the_api_servers_status_message_is_shown(kube: Kube) -> None:
    fake, config = kube
    assert ("prod", "nope") not in fake.deployments
    outcome = await action_from({"kubernetes": {"rollback": {"namespace": "prod", "deployment": "nope"}}}).run(
        ctx_for(config)
    )
    assert outcome.summary == 'Did not roll back prod/nope: Kubernetes answered 404: deployments.apps "nope" not found'


async def test_a_rollback_patch_answering_503_is_not_sent_again(kube: Kube) -> None:
    fake, config = kube
    fake.faults.fail(503, methods={"PATCH"})
    outcome = await fast(action_from(ROLLBACK)).run(ctx_for(config))
    assert not outcome.ok
    assert outcome.summary.endswith("The Deployment is unchanged; not retried automatically.")
    assert len(fake.writes()) == 1
    assert fake.image("prod", "api") == "api:3"


async def test_a_lost_rollback_answer_is_verified_by_reading(kube: Kube) -> None:
    fake, config = kube
    fake.faults.apply_then_fail(503, methods={"PATCH"})
    outcome = await fast(action_from(ROLLBACK)).run(ctx_for(config))
    assert outcome.ok, outcome.summary
    assert "the API answered badly" in outcome.summary
    assert len(fake.writes()) == 1
    assert fake.image("prod", "api") == "api:2"


async def test_scale_is_idempotent_so_its_patch_is_retried_bounded(kube: Kube) -> None:
    fake, config = kube
    fake.faults.fail(503, methods={"PATCH"})
    outcome = await fast(action_from(SCALE)).run(ctx_for(config))
    assert not outcome.ok
    assert [r.method for r in fake.requests] == ["GET", "PATCH", "PATCH", "PATCH"]


async def test_a_hanging_api_server_times_out_and_the_breaker_opens(kube: Kube) -> None:
    fake, config = kube
    fake.faults.hang()
    clock = FakeClock()
    ctx = ctx_for(config, breakers=Breakers(failure_threshold=3, recovery_timeout=30, clock=clock))
    first = await fast(action_from(SCALE)).run(ctx)
    assert "did not answer within 0.5s" in first.summary
    assert len(fake.requests) == 3
    second = await fast(action_from(ROLLBACK)).run(ctx)
    assert "calls paused until 09:00:30 UTC" in second.summary
    assert len(fake.requests) == 3


async def test_the_context_picks_the_credentials(kube: Kube) -> None:
    fake, config = kube
    wrong = {"kubernetes": {"context": "stranger", **SCALE["kubernetes"]}}
    outcome = await action_from(wrong).run(ctx_for(config))
    assert outcome.summary == "Did not scale prod/api-consumer: Kubernetes answered 401: Unauthorized"
    plugin = {"kubernetes": {"context": "plugin", **SCALE["kubernetes"]}}
    outcome = await action_from(plugin).run(ctx_for(config))
    assert "gets credentials from a plugin (exec/auth-provider), which guardrail does not run" in outcome.summary
    missing = {"kubernetes": {"context": "staging", **SCALE["kubernetes"]}}
    outcome = await action_from(missing).run(ctx_for(config))
    assert outcome.summary.endswith("kubeconfig: no context named 'staging'")
    assert fake.requests[0].headers["authorization"] == "Bearer wrong"
    assert len(fake.requests) == 1


async def test_missing_credentials_are_a_clear_failure(tmp_path: Path) -> None:
    outcome = await action_from(SCALE).run(make_ctx(endpoints={"kubeconfig": str(tmp_path / "nope")}))
    assert outcome.summary == f"Did not scale prod/api-consumer: kubeconfig {tmp_path / 'nope'} does not exist"
    outcome = await action_from(SCALE).run(make_ctx(endpoints={"default_kubeconfig": str(tmp_path / "none")}))
    assert outcome.summary.endswith(
        "no Kubernetes credentials: set KUBECONFIG, create ~/.kube/config, or run in a cluster"
    )


def test_in_cluster_credentials(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text(Path(certifi.where()).read_text())
    creds = load_credentials(
        {
            "kubernetes_service_host": "10.0.0.1",
            "kubernetes_service_port": "6443",
            "kubernetes_service_account_dir": str(tmp_path),
            "default_kubeconfig": str(tmp_path / "none"),
        }
    )
    assert (creds.server, creds.token, creds.source) == (
        "https://10.0.0.1:6443",
        "sa-token",
        "in-cluster service account",
    )
    assert creds.headers() == {"Authorization": "Bearer sa-token"}
    (tmp_path / "token").unlink()
    with pytest.raises(KubeconfigError, match="in-cluster credentials unreadable"):
        load_credentials(
            {
                "kubernetes_service_host": "10.0.0.1",
                "kubernetes_service_account_dir": str(tmp_path),
                "default_kubeconfig": str(tmp_path / "none"),
            }
        )


async def test_tls_with_the_clusters_ca_and_a_client_certificate(tmp_path: Path) -> None:
    import base64

    from tests.support.tls import self_signed, serve_tls

    server, client = self_signed(tmp_path, "apiserver", ip="127.0.0.1"), self_signed(tmp_path, "guardrail")
    fake = FakeKubernetes(token="unused")
    fake.add_deployment("prod", "api-consumer", images=["consumer:1"], replicas=3)

    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    async with serve_tls(fake.app, server, client_ca=client.cert) as url:
        config = tmp_path / "kubeconfig"
        cluster = {"server": url, "certificate-authority-data": data(server.cert)}
        config.write_text(
            yaml.safe_dump(
                {
                    "current-context": "prod",
                    "clusters": [{"name": "c", "cluster": cluster}],
                    "users": [
                        {
                            "name": "cert",
                            "user": {
                                "client-certificate-data": data(client.cert),
                                "client-key-data": data(client.key),
                                "token": "unused",
                            },
                        },
                        {
                            "name": "files",
                            "user": {
                                "client-certificate": "guardrail.crt",
                                "client-key": "guardrail.key",
                                "token": "unused",
                            },
                        },
                        {"name": "nocert", "user": {"token": "unused"}},
                    ],
                    "contexts": [
                        {"name": "prod", "context": {"cluster": "c", "user": "cert"}},
                        {"name": "files", "context": {"cluster": "c", "user": "files"}},
                        {"name": "nocert", "context": {"cluster": "c", "user": "nocert"}},
                    ],
                }
            )
        )
        outcome = await action_from(SCALE).run(ctx_for(config))
        assert outcome.ok, outcome.summary
        # Paths relative to the kubeconfig's directory, like kubectl.
        files = {"kubernetes": {"context": "files", **SCALE["kubernetes"]}}
        assert (await action_from(files).preview(ctx_for(config))).ok
        # Without a client certificate the API server refuses the TLS handshake.
        refused = await fast(action_from({"kubernetes": {"context": "nocert", **SCALE["kubernetes"]}})).run(
            ctx_for(config)
        )
        assert not refused.ok and "could not reach 127.0.0.1" in refused.summary
    assert fake.deployments[("prod", "api-consumer")]["spec"]["replicas"] == 0


def test_a_certificate_without_its_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "current-context": "prod",
                "clusters": [{"name": "c", "cluster": {"server": "https://k8s.example.com"}}],
                "users": [{"name": "u", "user": {"client-certificate-data": "QUJD"}}],
                "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    with pytest.raises(KubeconfigError, match="client certificate without a key"):
        load_credentials({"kubeconfig": str(config)})
