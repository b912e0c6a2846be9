"""Factories for action tests: a context, actions built from YAML-shaped config, a fake deploy hook."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.actions import ActionContext, StepAction, build_action
from bot.config import Action, Step
from bot.resilience import Breakers, CallPolicy
from bot.sandbox.fakes.provider import FakeProvider
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

    return ActionContext(actor="U0CAROL", incident_id=7, step_id="s", clock=clock,
                         breakers=breakers or Breakers(failure_threshold=3, recovery_timeout=60, clock=clock),
                         progress=record, **kwargs)


class FakeHook(FakeProvider):
    """A deploy hook: any path answers 200 {"ok": true} and echoes the JSON it got."""

    def __init__(self) -> None:
        super().__init__()
        self.answer_with: Callable[[Request, Any], Awaitable[Response]] | None = None  # a test's own answer
        self.app = Starlette(routes=[Route("/{path:path}", self.handle(self._answer),
                                           methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])

    async def _answer(self, request: Request, body: Any) -> Response:
        if self.answer_with is not None:
            return await self.answer_with(request, body)
        return JSONResponse({"ok": True, "received": body})


@pytest.fixture
async def hook() -> AsyncIterator[tuple[FakeHook, str]]:
    fake = FakeHook()
    async with fake.serve() as url:
        yield fake, url
