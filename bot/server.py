"""`guardrail serve`: validate, check the schema, then run HTTP (and Socket Mode) with the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sys
from collections.abc import AsyncIterator

import uvicorn
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG

from bot.features import startup_lines
from bot.logs import use_json_logs
from bot.resilience import reconnect_delays
from bot.runtime import Runtime
from bot.scheduler import build_scheduler
from bot.services.audit import UNSIGNED_WARNING
from bot.slack.app import create_bolt_app, slack_connection
from bot.web import create_web_app

log = logging.getLogger(__name__)

SOCKET_RETRY_MAX = 60.0


def build_app(runtime: Runtime) -> tuple[Starlette, AsyncApp]:
    slack = slack_connection(runtime)
    bolt = create_bolt_app(runtime, slack)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not runtime.audit.signed:
            log.warning(UNSIGNED_WARNING)
        line, problems = startup_lines(runtime)
        log.info(line)
        for problem in problems:
            log.warning("configuration: %s", problem)
        runtime.metrics.config_problems.set(len(problems) + len(runtime.settings.slack_problems()))
        await slack.open(bolt.client)
        await runtime.audit.record_config(runtime.loaded.sha256, [str(f) for f in runtime.loaded.files])
        scheduler = build_scheduler(runtime)
        scheduler.start()
        socket_task = None
        if runtime.settings.socket_mode:
            socket_task = asyncio.create_task(_socket_mode(runtime, bolt), name="socket-mode")
        try:
            yield
        finally:
            # APScheduler's asyncio executor cancels running ticks on shutdown (it cannot await them);
            # let them unwind before the database and HTTP clients close under them.
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
            await _finish_steps(runtime)
            if socket_task is not None:
                socket_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await socket_task
            await runtime.close()
            await slack.close()

    return create_web_app(runtime, bolt, lifespan=lifespan), bolt


async def _finish_steps(runtime: Runtime) -> None:
    """No new step clicks; running steps get `shutdown_timeout` to finish and record their results."""
    bound = runtime.settings.shutdown_timeout
    if runtime.steps_in_flight.running:
        log.info(
            "shutting down: waiting up to %gs for %d running playbook step(s)", bound, runtime.steps_in_flight.running
        )
    left = await runtime.steps_in_flight.drain(bound)
    if left:
        log.warning(
            "shutting down with %d playbook step(s) still running after %gs: each will show as "
            "interrupted once its lease expires (GUARDRAIL_STEP_LEASE_SECONDS)",
            left,
            bound,
        )


async def _socket_mode(runtime: Runtime, bolt: AsyncApp) -> None:
    """Connect to Slack over Socket Mode in the background; HTTP keeps serving meanwhile."""
    assert runtime.settings.slack_app_token is not None
    handler = AsyncSocketModeHandler(bolt, runtime.settings.slack_app_token.get_secret_value())
    delays = reconnect_delays(initial=1.0, maximum=SOCKET_RETRY_MAX)
    while True:
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("Socket Mode connected")
            await asyncio.Event().wait()  # the client reconnects by itself from here on
        except asyncio.CancelledError:
            await handler.close_async()  # type: ignore[no-untyped-call]
            raise
        except Exception as exc:
            delay = next(delays)
            log.warning("Socket Mode connection failed (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)


def serve(runtime: Runtime, *, host: str = "0.0.0.0") -> None:
    json_logs = runtime.settings.log_format == "json"
    if json_logs:
        use_json_logs()
    app, _ = build_app(runtime)
    log.info("guardrail serving on %s:%d, configuration sha256 %s", host, runtime.settings.port, runtime.loaded.sha256)
    # log_config=None in JSON mode: uvicorn's own lines go through the root logger's JSON handler.
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler it found;
    # a graceful stop is a success (exit 0) for Kubernetes, Heroku and systemd alike.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        app,
        host=host,
        port=runtime.settings.port,
        log_level="info",
        proxy_headers=True,
        log_config=None if json_logs else LOGGING_CONFIG,
        # uvicorn's own wait for open connections on SIGTERM; steps are waited for in the lifespan
        timeout_graceful_shutdown=max(math.ceil(runtime.settings.shutdown_timeout), 1),
    )


def _stopped(signum: int, _frame: object) -> None:
    sys.exit(0)
