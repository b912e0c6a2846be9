"""Playbook actions: what pressing a step's button does. One module per kind, one interface (`base`).

    action = build_action(step.action, step=step)
    action.describe()            # exact text for the confirm dialog
    await action.preview(ctx)    # dry run: read-only calls at most
    await action.run(ctx)        # ActionOutcome; failures are outcomes, never exceptions
    undo = build_undo(step, outcome.remembered)   # the step's `undo:` or an automatic one, or None

Importable without Slack or a database. Each kind's module (httpx, redis, rq …) is imported when an
action of that kind is first built; `preload(config)` imports the kinds a configuration uses at
startup, so no button press pays for an import on the event loop.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from bot.actions.base import ActionContext, ActionOutcome, StepAction
from bot.actions.environment import action_endpoints, action_secrets
from bot.config import Action, GuardrailConfig, Step

MODULES = {
    "http": "bot.actions.http",
    "checks": "bot.actions.checks",
    "heroku": "bot.actions.heroku",
    "kubernetes": "bot.actions.kubernetes",
    "rq_replay": "bot.actions.rq_replay",
}

__all__ = [
    "ActionContext",
    "ActionOutcome",
    "StepAction",
    "action_endpoints",
    "action_secrets",
    "build_action",
    "build_undo",
    "preload",
]


def preload(config: GuardrailConfig) -> None:
    """Import the modules of every action kind the playbooks use (and their undos)."""
    for playbook in config.playbooks:
        for step in playbook.steps:
            for action in (step.action, step.undo):
                if action is not None:
                    importlib.import_module(MODULES[action.kind])


def build_action(action: Action, *, step: Step | None = None) -> StepAction:
    """The runnable action for a validated `action:` (or `undo:`) block."""
    kind = action.kind
    if action.http is not None:
        from bot.actions.http import HttpStep

        return HttpStep(action.http)
    if action.checks is not None:
        from bot.actions.checks import ChecksStep

        return ChecksStep(tuple(action.checks))
    if action.heroku is not None:
        from bot.actions.heroku import HerokuRollbackStep, HerokuScaleStep

        if action.heroku.rollback is not None:
            return HerokuRollbackStep(app=action.heroku.rollback.app)
        if action.heroku.scale is not None:
            s = action.heroku.scale
            return HerokuScaleStep(app=s.app, process=s.process, quantity=s.quantity)
    if action.kubernetes is not None:
        from bot.actions.kubernetes import KubernetesRollbackStep, KubernetesScaleStep

        k = action.kubernetes
        if k.rollback is not None:
            return KubernetesRollbackStep(
                namespace=k.rollback.namespace, deployment=k.rollback.deployment, context=k.context
            )
        if k.scale is not None:
            return KubernetesScaleStep(
                namespace=k.scale.namespace, deployment=k.scale.deployment, replicas=k.scale.replicas, context=k.context
            )
    if action.rq_replay is not None:
        from bot.actions.rq_replay import RqReplayStep

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
        from bot.actions.heroku import HerokuRollbackStep, HerokuScaleStep

        if action.heroku.scale is not None and "previous_quantity" in remembered:
            s = action.heroku.scale
            return HerokuScaleStep(app=s.app, process=s.process, quantity=int(remembered["previous_quantity"]))
        if action.heroku.rollback is not None and remembered.get("previous_release_id"):
            return HerokuRollbackStep(
                app=action.heroku.rollback.app,
                target_release_id=str(remembered["previous_release_id"]),
                target_label=f"v{remembered.get('previous_version', '?')}",
            )
    if action.kubernetes is not None:
        from bot.actions.kubernetes import KubernetesRollbackStep, KubernetesScaleStep

        k = action.kubernetes
        if k.scale is not None and "previous_replicas" in remembered:
            return KubernetesScaleStep(
                namespace=k.scale.namespace,
                deployment=k.scale.deployment,
                replicas=int(remembered["previous_replicas"]),
                context=k.context,
            )
        if k.rollback is not None and remembered.get("previous_replicaset"):
            return KubernetesRollbackStep(
                namespace=k.rollback.namespace,
                deployment=k.rollback.deployment,
                context=k.context,
                target_replicaset=str(remembered["previous_replicaset"]),
            )
    return None
