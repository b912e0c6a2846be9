"""The sandbox page's routes, added to the bot's own Starlette app by `guardrail sandbox` only.

`/` and `/sandbox/static/…` serve the page (package data, no build step); `/sandbox/state` is what
one person sees; `/sandbox/events` streams a version number (Server-Sent Events) whenever anything
changes, and the page then fetches the state again; the POST routes are the people's actions and
the drill switches. Bad input is a 400 with one sentence, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bot.sandbox.drills import DrillWorld
from bot.sandbox.jobs import seed_failed_jobs
from bot.sandbox.slack_side import SlackSide
from bot.sandbox.standin.manifest import slash_commands

STATIC = files("bot.sandbox") / "static"
KEEPALIVE_SECONDS = 15.0
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def sandbox_routes(
    side: SlackSide, world: DrillWorld, *, demo: Callable[[], Awaitable[None]] | None = None, rq_queue: str = "default"
) -> list[BaseRoute]:
    async def index(_: Request) -> Response:
        return _static("index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("sandbox.js", "sandbox.css"):
            return JSONResponse({"error": "not found"}, status_code=404)
        return _static(name)

    async def state(request: Request) -> Response:
        user = request.query_params.get("user") or side.people[0].id
        try:
            side.person(user)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {**side.state(user), "drills": world.panel(), "commands": slash_commands(), "demo": demo is not None}
        )

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen = -1
            while not await request.is_disconnected():
                seen = await side.wait_change(seen, KEEPALIVE_SECONDS)
                yield f"data: {seen}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def say(body: dict[str, Any]) -> Any:
        status = await side.say(
            _str(body, "user"), _str(body, "channel"), _str(body, "text"), body.get("thread_ts") or None
        )
        return {"status": status}

    async def click(body: dict[str, Any]) -> Any:
        return {
            "status": await side.click(
                _str(body, "user"), _str(body, "channel"), _str(body, "ts"), _str(body, "action_id")
            )
        }

    async def submit(body: dict[str, Any]) -> Any:
        values = body.get("values")
        if not isinstance(values, dict):
            raise ValueError("values must be an object")
        return {"errors": await side.submit(_str(body, "user"), _str(body, "view_id"), values)}

    async def close(body: dict[str, Any]) -> Any:
        side.close_view(_str(body, "view_id"))
        return {}

    async def drill(body: dict[str, Any]) -> Any:
        kind = _str(body, "kind")
        if kind == "service":
            world.set_service(_str(body, "name"), _str(body, "state"))
        elif kind == "target":
            world.set_target(_str(body, "name"), _str(body, "state"))
        elif kind == "failed-jobs":
            if world.redis_problem:
                raise ValueError(world.redis_problem)
            count = body.get("count", 5)
            if not isinstance(count, int) or not 1 <= count <= 100:
                raise ValueError("count must be a whole number from 1 to 100")
            failed = await seed_failed_jobs(world.redis_url, rq_queue, count)
            side.changed()
            return {"failed": failed}
        elif kind == "demo-day":
            if demo is None:
                raise ValueError("the demo-day drill needs the shipped playbooks")
            await demo()
        else:
            raise ValueError("kind must be service, target, failed-jobs or demo-day")
        side.changed()
        return {}

    return [
        Route("/", index, methods=["GET"]),
        Route("/sandbox/static/{name}", static, methods=["GET"]),
        Route("/sandbox/state", state, methods=["GET"]),
        Route("/sandbox/events", events, methods=["GET"]),
        Route("/sandbox/say", _post(say), methods=["POST"]),
        Route("/sandbox/click", _post(click), methods=["POST"]),
        Route("/sandbox/submit", _post(submit), methods=["POST"]),
        Route("/sandbox/close", _post(close), methods=["POST"]),
        Route("/sandbox/drill", _post(drill), methods=["POST"]),
    ]


def _static(name: str) -> Response:
    resource = STATIC / name
    suffix = "." + name.rsplit(".", 1)[-1]
    return Response(resource.read_bytes(), media_type=_TYPES[suffix], headers={"Cache-Control": "no-cache"})


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is required (a non-empty string)")
    return value


def _post(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        try:
            return JSONResponse(await handler(body))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint
