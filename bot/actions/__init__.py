"""Playbook actions: what pressing a step's button does. One module per kind, one interface (`base`).

    action = build_action(step.action, step=step)
    action.describe()            # exact text for the confirm dialog
    await action.preview(ctx)    # dry run: read-only calls at most
    await action.run(ctx)        # ActionOutcome; failures are outcomes, never exceptions
    undo = build_undo(step, outcome.remembered)   # the step's `undo:` or an automatic one, or None

Importable without Slack or a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.actions.base import ActionContext, ActionOutcome, StepAction
from bot.actions.checks import ChecksStep
from bot.actions.environment import action_endpoints, action_secrets
from bot.actions.heroku import HerokuRollbackStep, HerokuScaleStep
from bot.actions.http import HttpStep
from bot.actions.kubernetes import KubernetesRollbackStep, KubernetesScaleStep
from bot.actions.rq_replay import RqReplayStep
from bot.config import Action, Step

__all__ = [
    "ActionContext",
    "ActionOutcome",
    "StepAction",
    "action_endpoints",
    "action_secrets",
    "build_action",
    "build_undo",
]


def build_action(action: Action, *, step: Step | None = None) -> StepAction:
    """The runnable action for a validated `action:` (or `undo:`) block."""
    kind = action.kind
    if action.http is not None:
        return HttpStep(action.http)
    if action.checks is not None:
        return ChecksStep(tuple(action.checks))
    if action.heroku is not None:
        if action.heroku.rollback is not None:
            return HerokuRollbackStep(app=action.heroku.rollback.app)
        if action.heroku.scale is not None:
            s = action.heroku.scale
            return HerokuScaleStep(app=s.app, process=s.process, quantity=s.quantity)
    if action.kubernetes is not None:
        k = action.kubernetes
        if k.rollback is not None:
            return KubernetesRollbackStep(namespace=k.rollback.namespace, deployment=k.rollback.deployment,
                                          context=k.context)
        if k.scale is not None:
            return KubernetesScaleStep(namespace=k.scale.namespace, deployment=k.scale.deployment,
                                       replicas=k.scale.replicas, context=k.context)
    if action.rq_replay is not None:
        return RqReplayStep(action.rq_replay)
    where = f" in step {step.id}" if step is not None else ""
    raise ValueError(f"unsupported action kind '{kind}'{where}")  # config validation makes this unreachable


def build_undo(step: Step, remembered: Mapping[str, Any]) -> StepAction | None:
    """How to reverse a step that succeeded, given its outcome's `remembered`; None when there is no undo.

    The step's own `undo:` wins. Otherwise: a scale goes back to the remembered quantity/replicas,
    and a rollback rolls forward to the release/ReplicaSet that was current before it.
    """
    if step.undo is not None:
        return build_action(step.undo, step=step)
    action = step.action
    if action.heroku is not None:
        if action.heroku.scale is not None and "previous_quantity" in remembered:
            s = action.heroku.scale
            return HerokuScaleStep(app=s.app, process=s.process, quantity=int(remembered["previous_quantity"]))
        if action.heroku.rollback is not None and remembered.get("previous_release_id"):
            return HerokuRollbackStep(app=action.heroku.rollback.app,
                                      target_release_id=str(remembered["previous_release_id"]),
                                      target_label=f"v{remembered.get('previous_version', '?')}")
    if action.kubernetes is not None:
        k = action.kubernetes
        if k.scale is not None and "previous_replicas" in remembered:
            return KubernetesScaleStep(namespace=k.scale.namespace, deployment=k.scale.deployment,
                                       replicas=int(remembered["previous_replicas"]), context=k.context)
        if k.rollback is not None and remembered.get("previous_replicaset"):
            return KubernetesRollbackStep(namespace=k.rollback.namespace, deployment=k.rollback.deployment,
                                          context=k.context, target_replicaset=str(remembered["previous_replicaset"]))
    return None
