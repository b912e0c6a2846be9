"""Shared plumbing for fake provider APIs (Heroku, Kubernetes): request recording and fault switches.

fake.faults.fail(status=503)                    # every request answers 503 until cleared
fake.faults.fail(status=503, times=2)           # the next two requests answer 503
fake.faults.fail(methods={"POST"})              # only writes fail
fake.faults.apply_then_fail(methods={"POST"})   # do the write, then answer 503 (a lost answer)
fake.faults.delay(0.5) / fake.faults.hang()     # slow, or no answer at all (until the server stops)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from bot.sandbox.standin import serve_asgi

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    answered: int | None  # None when the fake never answered (hang)

    @property
    def is_write(self) -> bool:
        return self.method in WRITES


@dataclass
class _Rule:
    status: int
    times: int | None
    methods: frozenset[str] | None
    after_apply: bool

    def matches(self, method: str) -> bool:
        return self.methods is None or method in self.methods


@dataclass
class Faults:
    rules: list[_Rule] = field(default_factory=list)
    delay_s: float = 0.0
    hanging: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, status: int = 503, *, times: int | None = None, methods: set[str] | None = None) -> None:
        self.rules.append(_Rule(status, times, frozenset(methods) if methods else None, after_apply=False))

    def apply_then_fail(self, status: int = 503, *, times: int | None = 1, methods: set[str] | None = None) -> None:
        self.rules.append(_Rule(status, times, frozenset(methods) if methods else None, after_apply=True))

    def delay(self, seconds: float) -> None:
        self.delay_s = seconds

    def hang(self) -> None:
        self.hanging = True

    def clear(self) -> None:
        self.rules.clear()
        self.delay_s = 0.0
        self.hanging = False

    def release(self) -> None:
        """Let hanging requests finish (called when the server stops)."""
        self.released.set()

    def take(self, method: str, *, after_apply: bool) -> int | None:
        for rule in self.rules:
            if rule.after_apply == after_apply and rule.matches(method) and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                return rule.status
        return None


Handler = Callable[[Request, Any], Awaitable[Response]]


class FakeProvider:
    """Base: records every request, applies the fault switches, then calls the real handler."""

    app: ASGIApp

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults = Faults()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """`async with fake.serve() as url:`; hanging requests are released before the server stops."""
        async with serve_asgi(self.app) as url:
            try:
                yield url
            finally:
                self.faults.release()

    def error(self, status: int, message: str) -> Response:  # each provider shapes its own errors
        return JSONResponse({"message": message}, status_code=status)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_write]

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def handle(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode(errors="replace")
            index = len(self.requests)
            self.requests.append(
                Recorded(request.method, request.url.path, request.url.query, dict(request.headers), body, None)
            )

            def answered(response: Response) -> Response:
                old = self.requests[index]
                self.requests[index] = Recorded(
                    old.method, old.path, old.query, old.headers, old.body, response.status_code
                )
                return response

            if self.faults.hanging:
                await self.faults.released.wait()
                return answered(self.error(504, "released at shutdown"))
            if self.faults.delay_s:
                await asyncio.sleep(self.faults.delay_s)
            status = self.faults.take(request.method, after_apply=False)
            if status is not None:
                return answered(self.error(status, "Service Unavailable (injected)"))
            response = await handler(request, body)
            status = self.faults.take(request.method, after_apply=True)
            if status is not None:
                return answered(self.error(status, "Service Unavailable after applying (injected)"))
            return answered(response)

        return endpoint
