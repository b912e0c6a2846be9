"""ASGI apps the gate benchmark serves under uvicorn (in their own processes)."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def _constant(_: Request) -> Response:
    return JSONResponse({"environment": "production", "frozen": False})


def bare_app() -> Starlette:
    """The baseline: a bare Starlette endpoint returning a constant."""
    return Starlette(routes=[Route("/api/v1/freeze", _constant, methods=["GET"])])


def gate_app() -> Starlette:
    """guardrail's real web app (Slack, API, scheduler) on BENCH_DATABASE_URL / BENCH_CONFIG."""
    from bot.config import load_config
    from bot.runtime import build_runtime
    from bot.server import build_app
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        database_url=os.environ["BENCH_DATABASE_URL"],
        guardrail_config=Path(os.environ["BENCH_CONFIG"]),
        guardrail_api_token="bench-token",
        slack_bot_token="xoxb-bench",
        slack_signing_secret="bench",
        slack_api_url="http://127.0.0.1:9/api/",
    )
    runtime = build_runtime(settings, load_config(settings.guardrail_config))
    app, _ = build_app(runtime)
    return app
