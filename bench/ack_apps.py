"""ASGI apps the ack benchmark serves under uvicorn, each in its own process (its own event loop)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TOKEN = "xoxb-test-token"  # the stand-in's default valid token
SECRET = "bench-signing-secret"
COMMANDS = ("/freeze", "/health")


def standin() -> Starlette:
    """The Slack stand-in (Web API and response_urls)."""
    from bot.sandbox.standin.fake_slack import FakeSlack

    fake = FakeSlack()
    fake.url = os.environ["BENCH_STANDIN_URL"]
    return fake.app


def _bolt(respond_once: bool, shared_session: bool = False) -> Starlette:
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=os.environ["BENCH_STANDIN_URL"] + "/api/"), signing_secret=SECRET
    )
    sessions: list[aiohttp.ClientSession] = []

    async def listener(ack: Any, respond: Any, body: dict[str, Any]) -> None:
        await ack()
        if respond_once and shared_session:
            if not sessions:
                sessions.append(aiohttp.ClientSession())
            await AsyncWebhookClient(body["response_url"], session=sessions[0]).send_dict(
                {"text": "Nothing is frozen.", "response_type": "ephemeral"}
            )
        elif respond_once:
            await respond(text="Nothing is frozen.", response_type="ephemeral")

    for command in COMMANDS:
        app.command(command)(listener)
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


def bare_health() -> Starlette:
    """The startup baseline: the bare Bolt app plus a `/healthz` that answers 200."""
    app = _bolt(respond_once=False)

    async def healthz(_: Request) -> Response:
        return Response("ok")

    app.router.routes.append(Route("/healthz", healthz, methods=["GET"]))
    return app


def bare_ack() -> Starlette:
    """The baseline: a bare Bolt AsyncApp whose command listeners only ack."""
    return _bolt(respond_once=False)


def bare_respond() -> Starlette:
    """The control: ack, then one respond() — the least post-ack work a real command does."""
    return _bolt(respond_once=True)


def bare_respond_shared() -> Starlette:
    """The control as it should be: ack, then one response_url post over one shared HTTP session."""
    return _bolt(respond_once=True, shared_session=True)


def guardrail() -> Starlette:
    """guardrail's real web app on BENCH_DATABASE_URL / BENCH_CONFIG, talking to the stand-in."""
    from bot.config import load_config
    from bot.runtime import build_runtime
    from bot.server import build_app
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        database_url=os.environ["BENCH_DATABASE_URL"],
        guardrail_config=Path(os.environ["BENCH_CONFIG"]),
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=os.environ["BENCH_STANDIN_URL"] + "/api/",
        slack_app_token=None,
        guardrail_api_token="bench-token",
    )
    app, _ = build_app(build_runtime(settings, load_config(settings.guardrail_config)))
    return app
