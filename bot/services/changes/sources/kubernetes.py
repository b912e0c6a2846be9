"""Kubernetes rollouts as changes: a Deployment's `deployment.kubernetes.io/revision` moved on.

The Deployment controller sets that annotation to the revision of the ReplicaSet now running the
pod template; a new rollout (or a `kubectl rollout undo`, which re-uses an old ReplicaSet under a new
revision number) raises it. Who did it is the `kubernetes.io/change-cause` annotation when set.
Limits: only the newest revision is seen (two rollouts between polls are one change), and a
ConfigMap or Secret change that does not touch the pod template is no rollout.
"""

from __future__ import annotations

from typing import Any

from bot.actions.base import ActionContext
from bot.actions.kubernetes import REVISION, read_deployment
from bot.resilience import CallPolicy
from bot.services.changes.models import ChangeKind, Discovered
from bot.services.changes.sources.heroku import POLL

CHANGE_CAUSE = "kubernetes.io/change-cause"


def to_discovered(deployment: dict[str, Any]) -> Discovered | None:
    meta = deployment.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    try:
        revision = int(annotations[REVISION])
    except (KeyError, TypeError, ValueError):
        return None  # never rolled out yet
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    images = ", ".join(str(c.get("image")) for c in containers if isinstance(c, dict) and c.get("image"))
    cause = annotations.get(CHANGE_CAUSE)
    return Discovered(
        version=revision,
        label=f"r{revision}",
        kind=ChangeKind.DEPLOY,
        description=(f"rollout of {images}" if images else "rollout")[:300],
        actor=str(cause)[:200] if cause else "kubernetes",
        at=None,
    )


class KubernetesRollouts:
    """`ChangeFeed` over one Deployment's revisions."""

    def __init__(
        self,
        namespace: str,
        deployment: str,
        ctx: ActionContext,
        *,
        context: str | None = None,
        policy: CallPolicy = POLL,
    ) -> None:
        self.namespace = namespace
        self.deployment = deployment
        self._ctx = ctx
        self._context = context
        self._policy = policy

    async def newest(self) -> list[Discovered]:
        found = to_discovered(
            await read_deployment(self._ctx, self.namespace, self.deployment, context=self._context, reads=self._policy)
        )
        return [found] if found is not None else []
