"""The one small interface every playbook action implements (http, checks, heroku, kubernetes, rq_replay).

The incident service claims a step run, builds the action from the step's config with
`bot.actions.build_action`, then calls `preview()` for a dry run or `run()` for real, and
records the `ActionOutcome` in the timeline and audit log. Actions never talk to Slack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.checks.base import ServiceProber
from bot.clock import Clock
from bot.resilience import Breakers

Progress = Callable[[str], Awaitable[None]]


async def _no_progress(_: str) -> None:
    return None


@dataclass(frozen=True)
class ActionOutcome:
    """What an action did (or, in a preview, would do)."""

    ok: bool
    summary: str  # one line for the playbook message
    details: Mapping[str, Any] = field(default_factory=dict)  # goes to the thread and the audit log
    remembered: Mapping[str, Any] = field(default_factory=dict)  # state an undo needs (e.g. previous quantity)


@dataclass(frozen=True)
class ActionContext:
    """What an action may use while it runs."""

    actor: str  # Slack user id of whoever pressed the button
    incident_id: int | None
    step_id: str
    clock: Clock
    breakers: Breakers
    prober: ServiceProber | None = None  # runs health checks (the `checks` action)
    secrets: Mapping[str, str] = field(default_factory=dict)  # e.g. {"heroku_api_token": "..."}
    endpoints: Mapping[str, str] = field(default_factory=dict)  # e.g. {"heroku_api_url": "https://api.heroku.com"}
    remembered: Mapping[str, Any] = field(default_factory=dict)  # from the run an undo reverts
    progress: Progress = _no_progress  # short progress lines, posted to the thread


class StepAction(Protocol):
    def describe(self) -> str:
        """Exactly what will happen, for the confirm dialog: 'POST https://…/rollback for service api'."""
        ...

    async def preview(self, ctx: ActionContext) -> ActionOutcome:
        """Dry run: read-only calls at most; says what would be sent; changes nothing."""
        ...

    async def run(self, ctx: ActionContext) -> ActionOutcome:
        """Do it. Failures are returned as ok=False outcomes with a reason, not raised."""
        ...
