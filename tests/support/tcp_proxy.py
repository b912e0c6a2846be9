"""A TCP proxy between the bot and a real server (PostgreSQL, Redis…) that can be told to fail.

Modes, switched at any time with `proxy.mode = …`:

- ``"pass"``: bytes flow both ways (the default);
- ``"refuse"``: new connections are accepted and closed at once, as a restarting server does —
  established ones are reset too (like a server that went away);
- ``"blackhole"``: new connections are accepted and never answered, established ones go silent in
  both directions (a network partition: nothing is closed, nothing arrives);
- ``"strand"``: established connections go silent (as after a failover without resets), while new
  connections pass — so a pool that trusts its old connections hangs, one that reconnects does not.

The proxy runs on the test's event loop and listens on 127.0.0.1 with a free port. Tests build a
database URL with `proxy.url_for(url)`. Nothing here sleeps: silent connections simply never get
their bytes forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Mode = Literal["pass", "refuse", "blackhole", "strand"]


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silenced: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()


class FaultyProxy:
    """Forward 127.0.0.1:<port> to (target_host, target_port) unless told to fail."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._mode: Mode = "pass"
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self._mode = mode
        if mode == "refuse":
            for link in list(self._links):
                link.close()
            self._links.clear()
        elif mode in ("blackhole", "strand"):
            for link in self._links:
                link.silenced = True

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by this proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for link in list(self._links):
            link.close()
        self._links.clear()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._mode == "refuse":
            writer.transport.abort()
            return
        link = _Link(client=writer, silenced=self._mode == "blackhole")
        self._links.add(link)
        if link.silenced:
            return  # accepted, never answered: the client waits until its own timeout
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            link.close()
            self._links.discard(link)
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.create_task(self._pipe(reader, up_writer, link)),
            asyncio.create_task(self._pipe(up_reader, writer, link)),
        ]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while data := await reader.read(65536):
                if link.silenced:
                    continue  # swallowed: the peer never hears anything again
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            if not link.silenced:
                link.close()
                self._links.discard(link)


@asynccontextmanager
async def faulty_proxy(target_url: str) -> AsyncIterator[FaultyProxy]:
    """A running proxy in front of the server that `target_url` names (host and port)."""
    parts = urlsplit(target_url)
    proxy = FaultyProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
