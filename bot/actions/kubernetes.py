"""The `kubernetes` actions: scale a Deployment, or roll it back like `kubectl rollout undo`.

A hand-written client over httpx rather than kubernetes_asyncio: we need four endpoints, and
httpx makes no request we did not ask for (no hidden retries), so the attempts counted by
`bot.resilience` are the attempts made. Reads are retried (bounded, jittered); setting an
absolute replica count is idempotent and may be retried; the rollback PATCH is sent once
and, if its answer is lost, verified by re-reading the Deployment.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.actions import _outbound
from bot.actions.base import ActionContext, ActionOutcome
from bot.actions.kubeconfig import KubeconfigError, KubeCredentials, load_credentials
from bot.resilience import CallPolicy, CircuitOpen

__all__ = ["KubernetesRollbackStep", "KubernetesScaleStep", "read_deployment"]

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
WRITE_ONCE = CallPolicy(timeout=20.0, attempts=1, deadline=20.0)
SET_REPLICAS = CallPolicy(timeout=10.0, attempts=3, backoff=0.5, max_backoff=4.0, deadline=30.0)


class KubeError(Exception):
    """The API server refused (its Status message), or the objects are not as expected."""


class _Api:
    def __init__(
        self, ctx: ActionContext, creds: KubeCredentials, client: httpx.AsyncClient, reads: CallPolicy
    ) -> None:
        self.ctx, self.creds, self.client, self.reads = ctx, creds, client, reads
        self.target = _outbound.target_of(creds.server)

    async def call(
        self,
        method: str,
        path: str,
        *,
        policy: CallPolicy,
        idempotent: bool,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", **self.creds.headers()}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            content = json.dumps(body).encode()
        response = await _outbound.request(
            self.client,
            method,
            self.creds.server + path,
            target=self.target,
            breakers=self.ctx.breakers,
            policy=policy,
            idempotent=idempotent,
            headers=headers,
            content=content,
        )
        if not response.is_success:
            raise KubeError(f"Kubernetes answered {response.status_code}: {_outbound.error_message(response)}")
        data: dict[str, Any] = response.json()
        return data

    async def get(self, path: str) -> dict[str, Any]:
        return await self.call("GET", path, policy=self.reads, idempotent=True)


async def _connect(ctx: ActionContext, context: str | None) -> KubeCredentials:
    return await asyncio.to_thread(load_credentials, ctx.endpoints, context)


def _failure(exc: Exception) -> str:
    return str(exc) if isinstance(exc, KubeError | KubeconfigError) else _outbound.describe_failure(exc)


async def read_deployment(
    ctx: ActionContext, namespace: str, name: str, *, context: str | None, reads: CallPolicy
) -> dict[str, Any]:
    """The Deployment object (for the change feed: its revision annotation); raises KubeError,
    KubeconfigError or what `_outbound.request` raises."""
    creds = await _connect(ctx, context)
    async with _outbound.client(reads.timeout, verify=creds.verify) as client:
        return await _Api(ctx, creds, client, reads).get(_deployment_path(namespace, name))


def _deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/deployments/{quote(name, safe='')}"


@dataclass(frozen=True)
class KubernetesScaleStep:
    """Set a Deployment's replicas through the scale subresource, remembering the previous count."""

    namespace: str
    deployment: str
    replicas: int
    context: str | None = None
    reads: CallPolicy = _outbound.READS
    write: CallPolicy = SET_REPLICAS

    def describe(self) -> str:
        return f"Scale Deployment {self.namespace}/{self.deployment} to {self.replicas} replicas"

    @property
    def _path(self) -> str:
        return _deployment_path(self.namespace, self.deployment) + "/scale"

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        try:
            creds = await _connect(ctx, self.context)
            async with _outbound.client(self.reads.timeout, verify=creds.verify) as client:
                scale = await _Api(ctx, creds, client, self.reads).get(self._path)
        except Exception as exc:
            return ActionOutcome(
                ok=False, summary=f"Cannot preview scaling {self.namespace}/{self.deployment}: {_failure(exc)}"
            )
        current = int(scale.get("spec", {}).get("replicas", 0))
        body = json.dumps({"spec": {"replicas": self.replicas}})
        return ActionOutcome(
            ok=True,
            summary=f"Would scale {self.namespace}/{self.deployment} from {current} to "
            f"{self.replicas} replicas: PATCH {self._path} {body}",
            details={"current_replicas": current, "replicas": self.replicas, "api": creds.source},
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        details: dict[str, Any] = {
            "namespace": self.namespace,
            "deployment": self.deployment,
            "replicas": self.replicas,
        }
        try:
            creds = await _connect(ctx, self.context)
            async with _outbound.client(max(self.reads.timeout, self.write.timeout), verify=creds.verify) as client:
                api = _Api(ctx, creds, client, self.reads)
                previous = int((await api.get(self._path)).get("spec", {}).get("replicas", 0))
                details["previous_replicas"] = previous
                remembered = {"namespace": self.namespace, "deployment": self.deployment, "previous_replicas": previous}
                if previous == self.replicas:
                    return ActionOutcome(
                        ok=True,
                        summary=f"{self.namespace}/{self.deployment} already has "
                        f"{self.replicas} replicas; nothing changed",
                        details=details,
                        remembered=remembered,
                    )
                await _outbound.say(
                    ctx, f"Scaling {self.namespace}/{self.deployment} from {previous} to {self.replicas}"
                )
                await api.call(
                    "PATCH",
                    self._path,
                    policy=self.write,
                    idempotent=True,
                    body={"spec": {"replicas": self.replicas}},
                    content_type=MERGE_PATCH,
                )
        except Exception as exc:
            return ActionOutcome(
                ok=False, summary=f"Did not scale {self.namespace}/{self.deployment}: {_failure(exc)}", details=details
            )
        return ActionOutcome(
            ok=True,
            summary=f"Scaled {self.namespace}/{self.deployment} from {previous} to {self.replicas} replicas",
            details=details,
            remembered=remembered,
        )


def _revision(obj: dict[str, Any]) -> int:
    try:
        return int(obj.get("metadata", {}).get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _bare_template(replicaset: dict[str, Any]) -> dict[str, Any]:
    """The ReplicaSet's pod template without the label the controller adds to it."""
    template: dict[str, Any] = copy.deepcopy(replicaset.get("spec", {}).get("template", {}))
    labels = template.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return template


@dataclass(frozen=True)
class _Plan:
    deployment: dict[str, Any]
    current: dict[str, Any] | None
    target: dict[str, Any]

    @property
    def current_label(self) -> str:
        return f"revision {_revision(self.deployment)}"

    @property
    def target_label(self) -> str:
        return f"revision {_revision(self.target)} ({self.target['metadata']['name']})"


@dataclass(frozen=True)
class KubernetesRollbackStep:
    """Point the Deployment's pod template back at its previous ReplicaSet's (or a fixed ReplicaSet's)."""

    namespace: str
    deployment: str
    context: str | None = None
    target_replicaset: str | None = None  # fixed target (undo); None = the previous revision
    reads: CallPolicy = _outbound.READS
    write: CallPolicy = WRITE_ONCE

    def describe(self) -> str:
        if self.target_replicaset:
            return f"Roll back Deployment {self.namespace}/{self.deployment} to ReplicaSet {self.target_replicaset}"
        return f"Roll back Deployment {self.namespace}/{self.deployment} to its previous revision"

    async def _plan(self, api: _Api) -> _Plan:
        deployment = await api.get(_deployment_path(self.namespace, self.deployment))
        if deployment.get("spec", {}).get("paused"):
            raise KubeError(f"{self.namespace}/{self.deployment} is paused; resume it before rolling back")
        uid = deployment.get("metadata", {}).get("uid")
        match_labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
        selector = ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
        listing = await api.get(
            f"/apis/apps/v1/namespaces/{quote(self.namespace, safe='')}/replicasets"
            f"?labelSelector={quote(selector, safe='')}"
        )
        owned = [
            rs
            for rs in listing.get("items", [])
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in rs.get("metadata", {}).get("ownerReferences", [])
            )
        ]
        current_revision = _revision(deployment)
        current = next((rs for rs in owned if _revision(rs) == current_revision), None)
        if self.target_replicaset:
            target = next((rs for rs in owned if rs["metadata"]["name"] == self.target_replicaset), None)
            if target is None:
                raise KubeError(
                    f"ReplicaSet {self.target_replicaset} of {self.namespace}/{self.deployment} no longer exists"
                )
        else:
            older = [rs for rs in owned if 0 < _revision(rs) < current_revision]
            if not older:
                raise KubeError(
                    f"{self.namespace}/{self.deployment} has no revision before revision "
                    f"{current_revision} to roll back to"
                )
            target = max(older, key=_revision)
        return _Plan(deployment, current, target)

    def _patch(self, plan: _Plan) -> list[dict[str, Any]]:
        return [{"op": "replace", "path": "/spec/template", "value": _bare_template(plan.target)}]

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        try:
            creds = await _connect(ctx, self.context)
            async with _outbound.client(self.reads.timeout, verify=creds.verify) as client:
                plan = await self._plan(_Api(ctx, creds, client, self.reads))
        except Exception as exc:
            return ActionOutcome(
                ok=False, summary=f"Cannot preview the rollback of {self.namespace}/{self.deployment}: {_failure(exc)}"
            )
        return ActionOutcome(
            ok=True,
            summary=f"Would roll back {self.namespace}/{self.deployment} from {plan.current_label} to "
            f"{plan.target_label}: PATCH the Deployment's spec.template ({JSON_PATCH})",
            details={"patch": self._patch(plan), "api": creds.source},
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        name = f"{self.namespace}/{self.deployment}"
        try:
            creds = await _connect(ctx, self.context)
        except Exception as exc:
            return ActionOutcome(ok=False, summary=f"Did not roll back {name}: {_failure(exc)}")
        async with _outbound.client(max(self.reads.timeout, self.write.timeout), verify=creds.verify) as client:
            api = _Api(ctx, creds, client, self.reads)
            try:
                plan = await self._plan(api)
            except Exception as exc:
                return ActionOutcome(ok=False, summary=f"Did not roll back {name}: {_failure(exc)}")
            details = {
                "from_revision": _revision(plan.deployment),
                "to_revision": _revision(plan.target),
                "to_replicaset": plan.target["metadata"]["name"],
            }
            if plan.deployment.get("spec", {}).get("template") == _bare_template(plan.target):
                return ActionOutcome(
                    ok=True,
                    summary=f"{name} already runs the template of {plan.target_label}; nothing sent",
                    details=details,
                )
            remembered = {
                "namespace": self.namespace,
                "deployment": self.deployment,
                "previous_revision": _revision(plan.deployment),
                "previous_replicaset": plan.current["metadata"]["name"] if plan.current else None,
            }
            await _outbound.say(ctx, f"Rolling {name} back from {plan.current_label} to {plan.target_label}")
            try:
                await api.call(
                    "PATCH",
                    _deployment_path(self.namespace, self.deployment),
                    policy=self.write,
                    idempotent=False,
                    body=self._patch(plan),
                    content_type=JSON_PATCH,
                )
            except (KubeError, CircuitOpen) as exc:
                return ActionOutcome(ok=False, summary=f"Did not roll back {name}: {_failure(exc)}", details=details)
            except Exception as exc:
                return await self._verify(api, plan, exc, details, remembered)
        return ActionOutcome(
            ok=True,
            summary=f"Rolled {name} back from {plan.current_label} to {plan.target_label}",
            details=details,
            remembered=remembered,
        )

    async def _verify(
        self, api: _Api, plan: _Plan, exc: Exception, details: dict[str, Any], remembered: dict[str, Any]
    ) -> ActionOutcome:
        """The PATCH's answer was lost: it is not sent again; the Deployment says whether it happened."""
        name = f"{self.namespace}/{self.deployment}"
        why = _failure(exc)
        try:
            now = await api.get(_deployment_path(self.namespace, self.deployment))
        except Exception as reread:
            return ActionOutcome(
                ok=False,
                summary=f"Rollback of {name} is uncertain: {why}; re-reading it failed "
                f"too ({_failure(reread)}). Check the cluster before pressing again.",
                details=details,
            )
        if now.get("spec", {}).get("template") == _bare_template(plan.target):
            return ActionOutcome(
                ok=True,
                summary=f"Rolled {name} back to {plan.target_label}; the API answered "
                f"badly ({why}) but the Deployment has the template, so it was not sent again",
                details=details,
                remembered=remembered,
            )
        return ActionOutcome(
            ok=False,
            summary=f"Did not roll back {name}: {why}. The Deployment is unchanged; not retried automatically.",
            details=details,
        )
