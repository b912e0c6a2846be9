"""The HTTP surface: Slack events, health probes, and the API CI pipelines call."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api import api_routes
from bot.db import outbox as outbox_rows
from bot.logs import request_context
from bot.metrics import Metrics, request_kind
from bot.resilience import give_up_after
from bot.runtime import Runtime
from bot.slack.failures import ANSWERED
from bot.slack.shape import malformed_reason

log = logging.getLogger(__name__)

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def create_web_app(runtime: Runtime, bolt: AsyncApp, *, lifespan: Lifespan | None = None) -> Starlette:
    handler = AsyncSlackRequestHandler(bolt)
    secret = runtime.settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value()) if secret else None

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Verify before anything parses the body: an unsigned, stale or forged request is 401
        # and touches nothing, whatever it contains.
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "malformed request: body is not UTF-8"}, status_code=400)
        if verifier is None or not _signed(verifier, text, dict(request.headers)):
            return JSONResponse({"error": "invalid request signature"}, status_code=401)
        problem = malformed_reason(body, request.headers.get("content-type", ""))
        if problem is not None:
            return JSONResponse({"error": f"malformed request: {problem}"}, status_code=400)
        request.state.kind = request_kind(request.url.path, body, request.headers.get("content-type", ""))
        answered = asyncio.Event()  # lets the error handler return only once Slack has its answer
        try:
            return await handler.handle(request, addition_context_properties={ANSWERED: answered})
        except Exception:
            log.exception("could not process a signed Slack request")
            return JSONResponse({"error": "malformed request"}, status_code=400)
        finally:
            answered.set()

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        reasons: list[str] = []
        # A probe that hangs is worse than one that says "not ready": a query (pre-ping included)
        # that cannot finish within the bound is 503 at the bound, whatever the connection does.
        bound = runtime.settings.ready_timeout
        try:
            await give_up_after(bound, runtime.db.ping(bound=bound))
        except TimeoutError:
            reasons.append(f"database: no answer within {bound:g}s")
        except Exception as exc:
            reasons.append(f"database: {type(exc).__name__}")
        if reasons:
            return JSONResponse({"ready": False, "reasons": reasons}, status_code=503)
        return JSONResponse({"ready": True, "config_sha256": runtime.loaded.sha256})

    async def metrics(request: Request) -> Response:
        runtime.metrics.outbox_backlog.set(await _outbox_backlog(runtime))
        body, content_type = runtime.metrics.render(request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    runtime.metrics.config_loaded.set(1 if runtime.loaded is not None else 0)
    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *api_routes(runtime),
    ]
    app = Starlette(routes=routes, lifespan=lifespan or _no_lifespan)
    app.add_middleware(RequestEdge, metrics=runtime.metrics)
    return app


class RequestEdge:
    """Every HTTP request: a request id for its log lines, and its kind, status and duration counted.

    A pure ASGI middleware (not BaseHTTPMiddleware), so the request body streams through untouched.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        state = scope.setdefault("state", {})
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # The same id as in the log lines: a CI job's log can quote it to whoever runs guardrail.
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with request_context(
            method=scope.get("method", ""),
            path=path,
            slack_retry_num=headers.get("x-slack-retry-num"),
            slack_retry_reason=headers.get("x-slack-retry-reason"),
        ) as request_id:
            try:
                await self.app(scope, receive, sending)
            finally:
                if path not in ("/metrics", "/healthz", "/readyz"):  # probes would drown the rest
                    kind = state.get("kind") or request_kind(path, b"", headers.get("content-type", ""))
                    self.metrics.request_answered(kind, status, time.perf_counter() - started)


OUTBOX_COUNT_BOUND = 1.0  # seconds: a scrape must not hang on a database that stopped answering


async def _outbox_backlog(runtime: Runtime) -> float:
    """How many announcements are due and unposted; NaN when the database cannot say within the bound."""

    async def count() -> int:
        async with runtime.db.reader(bound=OUTBOX_COUNT_BOUND) as session:
            return await outbox_rows.backlog(session, now=runtime.clock.now())

    try:
        return float(await give_up_after(OUTBOX_COUNT_BOUND, count()))
    except Exception:
        return math.nan


def _signed(verifier: SignatureVerifier, body: str, headers: dict[str, str]) -> bool:
    try:
        return bool(verifier.is_valid_request(body, headers))
    except (ValueError, TypeError):  # e.g. a timestamp header that is not a number
        return False


@asynccontextmanager
async def _no_lifespan(_: Starlette) -> AsyncIterator[None]:
    yield
