"""Factories for action tests: a context, actions and steps built from YAML-shaped config, fast policies."""

from __future__ import annotations

from typing import Any

from bot.actions import ActionContext, StepAction, build_action
from bot.config import Action, Step
from bot.resilience import Breakers, CallPolicy
from tests.support.clock import FakeClock

FAST_READS = CallPolicy(timeout=0.5, attempts=3, backoff=0.01, max_backoff=0.02, deadline=5)
FAST_WRITE = CallPolicy(timeout=0.5, attempts=1, deadline=5)
FAST_SET = CallPolicy(timeout=0.5, attempts=3, backoff=0.01, max_backoff=0.02, deadline=5)


def action_from(data: dict[str, Any]) -> StepAction:
    """Build the action exactly as a playbook's `action:` block would."""
    return build_action(Action.model_validate(data))


def step_from(data: dict[str, Any]) -> Step:
    return Step.model_validate({"id": "s", "label": "Step", **data})


def make_ctx(*, breakers: Breakers | None = None, progress: list[str] | None = None, **kwargs: Any) -> ActionContext:
    clock = FakeClock()
    lines = progress if progress is not None else []

    async def record(line: str) -> None:
        lines.append(line)

    return ActionContext(
        actor="U0CAROL",
        incident_id=7,
        step_id="s",
        clock=clock,
        breakers=breakers or Breakers(failure_threshold=3, recovery_timeout=60, clock=clock),
        progress=record,
        **kwargs,
    )
