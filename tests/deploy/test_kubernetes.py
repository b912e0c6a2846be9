"""deploy/kubernetes/: every document is a valid object of its kind, and the Role allows exactly what the action does.

The validator is the Kubernetes project's own OpenAPI models (the `kubernetes` package, v1 API
types): each document is turned into its model strictly — an unknown or misspelt field anywhere is
an error (the client itself would drop it silently), a wrong scalar type is an error, and the models'
own checks reject a missing required field. A binary such as kubeconform cannot be installed here;
the models are generated from the same OpenAPI schema it uses.

The RBAC test runs the real `kubernetes` actions (scale, rollback, undo) against the fake API server,
turns each request into the attributes the API server's authorizer sees (verb, group, resource,
subresource, name), and checks the Role in rbac.yaml allows every one and grants nothing unused.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import kubernetes.client as k8s
import pytest
import yaml

from bot.config import load_config
from bot.sandbox.fakes.kubernetes import FakeKubernetes, kubeconfig
from bot.sandbox.fakes.provider import Recorded
from tests.support.actions import action_from, make_ctx
from tests.support.paths import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"
SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "object": (str, int, dict, list, bool),
    "datetime": (str,),
    "date": (str,),
    "bytes": (str,),
}


class Invalid(Exception):
    pass


def to_model(data: Any, kind: str, where: str) -> Any:
    """`data` as the client type named `kind` ('V1PodSpec', 'list[V1Container]', 'dict(str, str)', 'int', …)."""
    if data is None:
        return None
    if (items := re.fullmatch(r"[Ll]ist\[(.*)\]", kind)) is not None:
        if not isinstance(data, list):
            raise Invalid(f"{where}: expected a list, got {type(data).__name__}")
        return [to_model(item, items[1], f"{where}[{i}]") for i, item in enumerate(data)]
    if (values := re.fullmatch(r"(?:dict\(|Dict\[)str, (.*)[)\]]", kind)) is not None:
        if not isinstance(data, dict):
            raise Invalid(f"{where}: expected a mapping, got {type(data).__name__}")
        return {key: to_model(value, values[1], f"{where}.{key}") for key, value in data.items()}
    if kind in SCALARS:
        if not isinstance(data, SCALARS[kind]) or (kind == "int" and isinstance(data, bool)):
            raise Invalid(f"{where}: expected {kind}, got {type(data).__name__} {data!r}")
        return data
    model = getattr(k8s, kind)
    if not isinstance(data, dict):
        raise Invalid(f"{where}: expected a {kind} mapping, got {type(data).__name__}")
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    unknown = sorted(set(data) - set(by_json))
    if unknown:
        raise Invalid(f"{where}: unknown field(s) {unknown} for {kind}")
    kwargs = {
        by_json[key]: to_model(value, model.openapi_types[by_json[key]], f"{where}.{key}")
        for key, value in data.items()
    }
    try:
        return model(**kwargs)
    except ValueError as exc:  # the model's own check (pydantic): a required field is missing
        raise Invalid(f"{where}: {exc}") from None


def model_name(api_version: str, kind: str) -> str:
    version = api_version.rsplit("/", 1)[-1]
    return f"{version.capitalize()}{kind}"


def validate(document: dict[str, Any], where: str) -> Any:
    if "apiVersion" not in document or "kind" not in document:
        raise Invalid(f"{where}: apiVersion and kind are required")
    name = model_name(document["apiVersion"], document["kind"])
    if not hasattr(k8s, name):
        raise Invalid(f"{where}: {document['apiVersion']} {document['kind']} is not a Kubernetes kind")
    return to_model(document, name, f"{where} {document['kind']}")


def documents() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        found[path.name] = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return found


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) → document, across every file."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for docs in documents().values() for doc in docs}


def test_every_manifest_is_a_valid_kubernetes_object() -> None:
    kinds = set()
    for filename, docs in documents().items():
        assert docs, f"{filename} is empty"
        for i, doc in enumerate(docs):
            validate(doc, f"{filename}#{i}")
            kinds.add(doc["kind"])
    assert kinds >= {
        "Deployment",
        "Job",
        "Secret",
        "ConfigMap",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
    }


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "readinesProbe": {}}]}}},
            },
            r"unknown field\(s\) \['readinesProbe'\] for V1Container",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"replicas": "2", "selector": {}, "template": {}},
            },
            r"spec.replicas: expected int, got str",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"selector": {}, "template": {"spec": {"containers": [{"image": "x"}]}}},
            },
            r"containers\[0\]: .*V1Container\nname\n  Field required",
        ),
        (
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudjet", "metadata": {"name": "x"}},
            "not a Kubernetes kind",
        ),
    ],
)
def test_the_validator_rejects_what_the_api_server_would(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(Invalid, match=problem):
        validate(document, "bad.yaml")


def pod_specs() -> dict[str, dict[str, Any]]:
    found = objects()
    return {
        "deployment": found[("Deployment", "guardrail")]["spec"]["template"]["spec"],
        "migrate": found[("Job", "guardrail-migrate")]["spec"]["template"]["spec"],
    }


def test_two_replicas_probed_on_readyz_and_healthz_and_kept_by_a_disruption_budget() -> None:
    found = objects()
    deployment = found[("Deployment", "guardrail")]
    assert deployment["spec"]["replicas"] == 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = container["ports"][0]
    assert port["containerPort"] == int(found[("ConfigMap", "guardrail-env")]["data"]["PORT"])
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    pdb = found[("PodDisruptionBudget", "guardrail")]["spec"]
    assert pdb["minAvailable"] == 1 and pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    service = found[("Service", "guardrail")]["spec"]
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    job = found[("Job", "guardrail-migrate")]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate"] and job["restartPolicy"] == "Never"
    assert job["containers"][0]["image"] == container["image"]


def test_pods_run_as_non_root_with_limits_and_the_config_they_reference() -> None:
    found = objects()
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name  # the Dockerfile's USER
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            refs = {(next(iter(ref)), next(iter(ref.values()))["name"]) for ref in container["envFrom"]}
            assert refs == {("configMapRef", "guardrail-env"), ("secretRef", "guardrail-secrets")}
    assert ("ConfigMap", "guardrail-env") in found and ("Secret", "guardrail-secrets") in found
    secret = found[("Secret", "guardrail-secrets")]
    assert all(value == "" for value in secret["stringData"].values()), "the example Secret must hold no values"
    assert pod_specs()["deployment"]["volumes"][0]["configMap"]["name"] == "guardrail-playbooks"
    assert found[("ConfigMap", "guardrail-env")]["data"]["GUARDRAIL_CONFIG"] == "/app/playbooks"


# -- RBAC: what the action does, as the API server's authorizer sees it --------------------------------


def attributes(request: Recorded) -> dict[str, str]:
    """Kubernetes' RequestInfo for a resource request: verb, apiGroup, namespace, resource, subresource, name."""
    match = re.fullmatch(
        r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<namespace>[^/]+)/"
        r"(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<subresource>[^/]+))?)?",
        request.path,
    )
    assert match is not None, f"not a namespaced API group request: {request.method} {request.path}"
    watching = parse_qs(request.query).get("watch") == ["true"]
    collection = {"GET": "watch" if watching else "list", "POST": "create", "DELETE": "deletecollection"}
    single = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
    verb = (single if match["name"] else collection)[request.method]
    return {
        "verb": verb,
        "group": match["group"],
        "namespace": match["namespace"],
        "resource": match["resource"],
        "subresource": match["subresource"] or "",
        "name": match["name"] or "",
    }


def allows(rule: dict[str, Any], attrs: dict[str, str]) -> bool:
    """One PolicyRule against one request, as the RBAC authorizer decides it."""
    resource = attrs["resource"] + (f"/{attrs['subresource']}" if attrs["subresource"] else "")
    names = rule.get("resourceNames") or []
    return (
        (attrs["group"] in rule["apiGroups"] or "*" in rule["apiGroups"])
        and (resource in rule["resources"] or "*" in rule["resources"])
        and (attrs["verb"] in rule["verbs"] or "*" in rule["verbs"])
        and (not names or attrs["name"] in names)
    )


@pytest.fixture
async def kube_calls(tmp_path: Path) -> AsyncIterator[list[Recorded]]:
    """Every request the scale and rollback actions (and their undos) send, run for real."""
    fake = FakeKubernetes()
    fake.add_deployment("prod", "api-consumer", images=["consumer:1"], replicas=3)
    fake.add_deployment("prod", "api", images=["api:1", "api:2"], replicas=2)
    async with fake.serve() as url:
        ctx = make_ctx(endpoints={"kubeconfig": str(kubeconfig(tmp_path / "kubeconfig", url))})
        for step in (
            {"kubernetes": {"scale": {"namespace": "prod", "deployment": "api-consumer", "replicas": 0}}},
            {"kubernetes": {"rollback": {"namespace": "prod", "deployment": "api"}}},
        ):
            action = action_from(step)
            assert (await action.preview(ctx)).ok
            outcome = await action.run(ctx)
            assert outcome.ok, outcome.summary
        yield list(fake.requests)


def role_and_binding() -> tuple[dict[str, Any], dict[str, Any]]:
    found = objects()
    return found[("Role", "guardrail-actions")], found[("RoleBinding", "guardrail-actions")]


async def test_the_role_allows_every_call_the_kubernetes_action_makes_and_nothing_more(
    kube_calls: list[Recorded],
) -> None:
    role, _ = role_and_binding()
    calls = [attributes(request) for request in kube_calls]
    assert {(c["verb"], c["resource"], c["subresource"]) for c in calls} == {
        ("get", "deployments", "scale"),
        ("patch", "deployments", "scale"),
        ("get", "deployments", ""),
        ("list", "replicasets", ""),
        ("patch", "deployments", ""),
    }
    for call in calls:
        assert call["namespace"] == role["metadata"]["namespace"]
        assert any(allows(rule, call) for rule in role["rules"]), f"the Role forbids {call}"
    for rule in role["rules"]:
        for verb in rule["verbs"]:
            for resource in rule["resources"]:
                used = [
                    c
                    for c in calls
                    if c["verb"] == verb
                    and resource == c["resource"] + (f"/{c['subresource']}" if c["subresource"] else "")
                ]
                assert used, f"the Role grants {verb} on {resource}, which the action never does"
    assert "*" not in str(role["rules"])


def test_the_role_names_every_deployment_the_shipped_playbooks_act_on() -> None:
    role, binding = role_and_binding()
    named = {name for rule in role["rules"] for name in rule.get("resourceNames", [])}
    env = {"API_URL": "http://x", "APP_DATABASE_URL": "postgres://x@h/db", "DEPLOY_HOOK": "https://x"}
    config = load_config(ROOT / "playbooks", env).config
    targets = {(kube.namespace, kube.deployment) for kube in _kubernetes_steps(config)}
    assert targets, "the shipped playbooks have no kubernetes step"
    assert {namespace for namespace, _ in targets} == {role["metadata"]["namespace"]}
    assert {deployment for _, deployment in targets} <= named
    # The binding gives the Role to the Deployment's service account, across namespaces.
    deployment = objects()[("Deployment", "guardrail")]
    [subject] = binding["subjects"]
    assert subject == {
        "kind": "ServiceAccount",
        "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "namespace": deployment["metadata"]["namespace"],
    }
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "guardrail-actions"}


def _kubernetes_steps(config: Any) -> list[Any]:
    found = []
    for playbook in config.playbooks:
        for step in playbook.steps:
            kube = getattr(step.action, "kubernetes", None)
            if kube is not None:
                found.append(kube.scale or kube.rollback)
    return found
