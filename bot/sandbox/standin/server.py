"""Serve any ASGI app under uvicorn on a free 127.0.0.1 port, inside the running event loop.

Tests talk to the bot and to the Slack stand-in over real HTTP (so slack_sdk, Bolt and their
aiohttp/httpx clients run unmodified), while everything shares pytest-asyncio's loop, so the
stand-in's recorded calls can be awaited directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0


class _InLoopServer(uvicorn.Server):
    """uvicorn.Server that signals readiness with an Event and leaves signal handling to pytest."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Keep Ctrl-C a KeyboardInterrupt for pytest instead of a server shutdown."""
        yield


async def _serve(server: _InLoopServer) -> None:
    """Run the server; uvicorn's startup failures are `sys.exit`, which must not kill the loop."""
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn failed to start (exit code {exc.code})") from exc


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """`async with serve_asgi(app) as url:` — url is "http://127.0.0.1:PORT"; stops cleanly on exit.

    Port 0 lets the OS pick a free port; the bound one is read back from the listening socket.
    Lifespan is on, so the app's startup/shutdown hooks run as in production.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = _InLoopServer(config)
    task = asyncio.create_task(_serve(server), name=f"uvicorn {host}:{port}")
    ready = asyncio.create_task(server.ready.wait())
    try:
        await asyncio.wait({task, ready}, timeout=STARTUP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if not server.started:
        server.should_exit = True
        if task.done():
            task.result()  # re-raise the startup error
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise RuntimeError(f"uvicorn did not start within {STARTUP_TIMEOUT}s")
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=SHUTDOWN_TIMEOUT)
