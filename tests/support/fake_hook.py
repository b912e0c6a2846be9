"""A deploy hook for `http` steps: any path answers 200 {"ok": true} and echoes the JSON it got."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.fakes.provider import FakeProvider


class FakeHook(FakeProvider):
    """A deploy hook: any path answers 200 {"ok": true} and echoes the JSON it got."""

    def __init__(self) -> None:
        super().__init__()
        self.answer_with: Callable[[Request, Any], Awaitable[Response]] | None = None  # a test's own answer
        self.app = Starlette(
            routes=[Route("/{path:path}", self.handle(self._answer), methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )

    async def _answer(self, request: Request, body: Any) -> Response:
        if self.answer_with is not None:
            return await self.answer_with(request, body)
        return JSONResponse({"ok": True, "received": body})
