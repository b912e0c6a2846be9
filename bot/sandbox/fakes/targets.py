"""Real local HTTP targets for health checks: up, slow, erroring, hanging — counting every hit.

One Starlette app answers any path with the behaviour set for it (`server.set("/up", ...)`), else
the one set for the longest matching prefix (`prefix_behaviours`, e.g. every path under a deploy
hook); unknown paths answer 200 "ok". Hanging handlers wait on an event released at teardown, so the
server stops at once instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox.standin.server import serve_asgi


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    body: str = "ok"
    hang: bool = False
    content_type: str = "text/plain"


class TargetServer:
    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.prefix_behaviours: dict[str, Behaviour] = {}
        self.hits: Counter[str] = Counter()
        self.url = ""
        self.release = asyncio.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "HEAD"])])

    def set(self, path: str, **behaviour: Any) -> str:
        """Configure `path`; returns its full URL."""
        if "json" in behaviour:
            behaviour["body"] = json.dumps(behaviour.pop("json"))
            behaviour["content_type"] = "application/json"
        self.behaviours[path] = Behaviour(**behaviour)
        return self.url + path

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] += 1
        behaviour = self.behaviours.get(path) or self._by_prefix(path)
        if behaviour.hang:
            await self.release.wait()
        elif behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        return Response(behaviour.body, status_code=behaviour.status, media_type=behaviour.content_type)

    def _by_prefix(self, path: str) -> Behaviour:
        prefixes = [p for p in self.prefix_behaviours if path == p or path.startswith(p.rstrip("/") + "/")]
        return self.prefix_behaviours[max(prefixes, key=len)] if prefixes else Behaviour()


@asynccontextmanager
async def target_server() -> AsyncIterator[TargetServer]:
    server = TargetServer()
    async with serve_asgi(server.app) as url:
        server.url = url
        try:
            yield server
        finally:
            server.release.set()


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database or Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
