"""Fake playbook actions that record every call, so exactly-once is proven by counting.

`FakeActions` is an action factory (`Callable[[Action], StepAction]`): an action is known by
the last path segment of its http url (`https://deploy.example.com/rollback` → "rollback").
Script it per name: succeed (default), fail, raise, or hang until released.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bot.actions.base import ActionContext, ActionOutcome, StepAction
from bot.config import Action


def action_name(action: Action) -> str:
    if action.http is not None:
        return str(action.http.url).rstrip("/").rsplit("/", 1)[-1]
    return action.kind


@dataclass
class Script:
    outcome: str = "ok"  # ok | fail | raise | hang
    gate: asyncio.Event | None = None  # with "hang": run() waits for this
    remember: dict[str, Any] = field(default_factory=dict)


class FakeAction:
    def __init__(self, owner: FakeActions, name: str) -> None:
        self._owner = owner
        self.name = name

    def describe(self) -> str:
        return f"POST https://deploy.example.com/{self.name}"

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        self._owner.previews[self.name] += 1
        return ActionOutcome(
            True, f"would POST https://deploy.example.com/{self.name}", details={"would_send": {"service": "api"}}
        )

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        owner = self._owner
        owner.runs[self.name] += 1
        owner.contexts.append((self.name, ctx))
        script = owner.scripts.get(self.name, Script())
        owner.started.set()
        await ctx.progress(f"calling {self.name}")
        if script.outcome == "hang":
            assert script.gate is not None
            await script.gate.wait()
        if script.outcome == "raise":
            raise RuntimeError(f"{self.name} exploded")
        if script.outcome == "fail":
            return ActionOutcome(False, f"{self.name} answered 503", details={"status": 503})
        return ActionOutcome(True, f"{self.name} done", details={"status": 200}, remembered=script.remember)


class FakeActions:
    """The factory plus the record of what ran (shared by every bot process in a test)."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.previews: Counter[str] = Counter()
        self.contexts: list[tuple[str, ActionContext]] = []
        self.scripts: dict[str, Script] = {}
        self.started = asyncio.Event()

    def __call__(self, action: Action) -> StepAction:
        return FakeAction(self, action_name(action))

    def hang(self, name: str) -> asyncio.Event:
        """Make `name` block until the returned event is set."""
        gate = asyncio.Event()
        self.scripts[name] = Script("hang", gate)
        return gate
