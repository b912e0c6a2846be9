"""The action factory `build_runtime` uses: `bot.actions.build_action`, imported lazily.

The actions live in their own package (http, checks, heroku, kubernetes, rq_replay). A build
without them still declares incidents and draws playbooks; pressing a step then fails with a
clear outcome instead of crashing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bot.actions.base import ActionContext, ActionOutcome, StepAction
from bot.config import Action

NOT_AVAILABLE = "actions are not available in this build of guardrail"


class UnavailableAction:
    """Stands in for every action when `bot.actions.build_action` does not exist."""

    def __init__(self, action: Action) -> None:
        self._kind = action.kind

    def describe(self) -> str:
        return f"{self._kind} action ({NOT_AVAILABLE})"

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        return ActionOutcome(False, f"{self._kind}: {NOT_AVAILABLE}")

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        return ActionOutcome(False, f"{self._kind}: {NOT_AVAILABLE}")


def playbook_actions() -> Callable[[Action], StepAction]:
    """`bot.actions.build_action` when present, else a factory of `UnavailableAction`s."""

    def build(action: Action) -> StepAction:
        try:
            build_action = importlib.import_module("bot.actions").build_action
        except AttributeError:
            return UnavailableAction(action)
        built: StepAction = build_action(action)
        return built

    return build
