"""A fake Kubernetes API server (apps/v1 Deployments and ReplicaSets) speaking the real wire format.

Deployment and ReplicaSet JSON with ownerReferences, pod-template-hash labels and the
`deployment.kubernetes.io/revision` annotation; the scale subresource (autoscaling/v1 Scale);
PATCH with application/json-patch+json, application/merge-patch+json and
application/strategic-merge-patch+json (applied as a merge patch: enough for the fields our
actions touch); `Status` objects on errors; Bearer-token auth. A tiny "controller" runs on
every template change, like the real one: it reuses the ReplicaSet whose template matches
(bumping its revision) or creates a new one.

    fake = FakeKubernetes()
    fake.add_deployment("prod", "api", images=["api:1", "api:2", "api:3"], replicas=3)
    async with fake.serve() as url: ...
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.fakes.provider import FakeProvider

TOKEN = "kube-test-token"
REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json")
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status(code: int, message: str, **details: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=code)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902: add, replace, remove (what clients send to Deployments)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if op["op"] == "replace" and last not in parent:
                raise KeyError(op["path"])
            parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            raise ValueError(f"unsupported op {op['op']}")
    return doc


def _template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _bare(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    template.get("metadata", {}).get("labels", {}).pop(HASH, None)
    return template


class FakeKubernetes(FakeProvider):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.replicasets: dict[tuple[str, str], dict[str, Any]] = {}
        base = "/apis/apps/v1/namespaces/{ns}"
        self.app = Starlette(
            routes=[
                Route(base + "/deployments/{name}", self.handle(self._get_deployment), methods=["GET"]),
                Route(base + "/deployments/{name}", self.handle(self._patch_deployment), methods=["PATCH"]),
                Route(base + "/deployments/{name}/scale", self.handle(self._get_scale), methods=["GET"]),
                Route(base + "/deployments/{name}/scale", self.handle(self._patch_scale), methods=["PATCH"]),
                Route(base + "/replicasets", self.handle(self._list_replicasets), methods=["GET"]),
            ]
        )

    # -- building state --------------------------------------------------------------------

    def add_deployment(self, namespace: str, name: str, *, images: list[str], replicas: int = 3) -> dict[str, Any]:
        """A Deployment rolled out once per image (so it has len(images) revisions, the last current)."""
        labels = {"app": name}
        deployment: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "labels": labels,
                "annotations": {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {},
                "strategy": {"type": "RollingUpdate"},
            },
            "status": {"replicas": replicas, "readyReplicas": replicas},
        }
        self.deployments[(namespace, name)] = deployment
        for image in images:
            deployment["spec"]["template"] = {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": name, "image": image}]},
            }
            self._reconcile(deployment)
        return deployment

    def add_foreign_replicaset(self, namespace: str, name: str, labels: dict[str, str], revision: int) -> None:
        """A ReplicaSet matching the selector but owned by something else (must be ignored)."""
        self.replicasets[(namespace, name)] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "uid": str(uuid.uuid4()),
                "annotations": {REVISION: str(revision)},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "other",
                        "uid": str(uuid.uuid4()),
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "x", "image": "foreign:9"}]},
                },
            },
        }

    def owned(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        return [
            rs
            for rs in self.replicasets.values()
            if any(ref["uid"] == uid for ref in rs["metadata"].get("ownerReferences", []))
        ]

    def image(self, namespace: str, name: str) -> str:
        return str(self.deployments[(namespace, name)]["spec"]["template"]["spec"]["containers"][0]["image"])

    def _reconcile(self, deployment: dict[str, Any]) -> None:
        """What the Deployment controller does on a template change."""
        template = deployment["spec"]["template"]
        owned = self.owned(deployment)
        top = max((int(rs["metadata"]["annotations"].get(REVISION, 0)) for rs in owned), default=0)
        match = next((rs for rs in owned if _bare(rs["spec"]["template"]) == template), None)
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        if match is None:
            pod_hash = _template_hash(template)
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH] = pod_hash
            labels = dict(rs_template["metadata"]["labels"])
            match = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{pod_hash}",
                    "namespace": namespace,
                    "labels": labels,
                    "uid": str(uuid.uuid4()),
                    "annotations": {REVISION: str(top + 1)},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": deployment["metadata"]["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": rs_template},
            }
            self.replicasets[(namespace, match["metadata"]["name"])] = match
        elif int(match["metadata"]["annotations"][REVISION]) != top:
            match["metadata"]["annotations"][REVISION] = str(top + 1)
        for rs in self.owned(deployment):
            rs["spec"]["replicas"] = deployment["spec"]["replicas"] if rs is match else 0
        deployment["metadata"]["annotations"][REVISION] = match["metadata"]["annotations"][REVISION]
        deployment["metadata"]["generation"] += 1

    # -- HTTP ------------------------------------------------------------------------------

    def error(self, status_code: int, message: str) -> Response:
        return status(status_code, message)

    def _refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized")
        return None

    def _deployment(self, request: Request) -> dict[str, Any] | Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        key = (request.path_params["ns"], request.path_params["name"])
        found = self.deployments.get(key)
        if found is None:
            return status(404, f'deployments.apps "{key[1]}" not found', name=key[1], group="apps", kind="deployments")
        return found

    def _patched(self, request: Request, doc: Any, body: Any) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind not in PATCH_TYPES:
            return status(
                415,
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}",
            )
        try:
            return json_patch(doc, body) if kind == PATCH_TYPES[0] else merge_patch(doc, body)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return status(422, f"the server rejected our request due to an error in our request: {exc}")

    async def _get_deployment(self, request: Request, body: Any) -> Response:
        found = self._deployment(request)
        return found if isinstance(found, Response) else JSONResponse(found)

    async def _patch_deployment(self, request: Request, body: Any) -> Response:
        found = self._deployment(request)
        if isinstance(found, Response):
            return found
        patched = self._patched(request, found, body)
        if isinstance(patched, Response):
            return patched
        template_changed = patched["spec"]["template"] != found["spec"]["template"]
        found.clear()
        found.update(patched)
        if template_changed:
            self._reconcile(found)
        return JSONResponse(found)

    def _scale(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": {
                "replicas": deployment["status"]["replicas"],
                "selector": ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()),
            },
        }

    async def _get_scale(self, request: Request, body: Any) -> Response:
        found = self._deployment(request)
        return found if isinstance(found, Response) else JSONResponse(self._scale(found))

    async def _patch_scale(self, request: Request, body: Any) -> Response:
        found = self._deployment(request)
        if isinstance(found, Response):
            return found
        patched = self._patched(request, self._scale(found), body)
        if isinstance(patched, Response):
            return patched
        replicas = patched.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return status(
                422,
                f'Scale.autoscaling "{found["metadata"]["name"]}" is invalid: spec.replicas: '
                "Invalid value: must be greater than or equal to 0",
            )
        found["spec"]["replicas"] = found["status"]["replicas"] = replicas
        for rs in self.owned(found):
            if rs["metadata"]["annotations"].get(REVISION) == found["metadata"]["annotations"][REVISION]:
                rs["spec"]["replicas"] = replicas
        return JSONResponse(self._scale(found))

    async def _list_replicasets(self, request: Request, body: Any) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        wanted: dict[str, str] = {}
        for term in filter(None, request.query_params.get("labelSelector", "").split(",")):
            key, sep, value = term.partition("=")
            if not sep:
                return status(400, f"unable to parse requirement: {term}")
            wanted[key] = value
        items = [
            rs
            for (ns, _), rs in sorted(self.replicasets.items())
            if ns == request.path_params["ns"] and all(rs["metadata"]["labels"].get(k) == v for k, v in wanted.items())
        ]
        return JSONResponse(
            {"kind": "ReplicaSetList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "1"}, "items": items}
        )


def kubeconfig(path: Path, server: str, *, token: str = TOKEN, extra_user: dict[str, Any] | None = None) -> Path:
    """A kubeconfig for the fake at `server`: context `prod` has the token, `stranger` a wrong one,
    `plugin` an exec plugin (which guardrail refuses)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "prod",
                "clusters": [{"name": "prod-cluster", "cluster": {"server": server}}],
                "users": [
                    {"name": "guardrail", "user": {"token": token}},
                    {"name": "stranger", "user": {"token": "wrong"}},
                    {"name": "plugin", "user": extra_user or {"exec": {"command": "aws"}}},
                ],
                "contexts": [
                    {"name": "prod", "context": {"cluster": "prod-cluster", "user": "guardrail"}},
                    {"name": "stranger", "context": {"cluster": "prod-cluster", "user": "stranger"}},
                    {"name": "plugin", "context": {"cluster": "prod-cluster", "user": "plugin"}},
                ],
            }
        )
    )
    return path
